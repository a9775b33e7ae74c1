// Process-wide kernel state: the mm fields (brk, stack, arguments, auxv: PR_SET_MM_MAP, which
// needs no capability), personality, umask, resource limits, signal dispositions, interval
// timers, and the descriptors: only the resumer's standard ones survive, the program's files are
// opened again at their numbers, offsets and flags, and the shim's two are made again.
#include <cerrno>
#include <fcntl.h>
#include <linux/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>

#include "tools/restorer/restorer.h"

namespace restorer {

namespace {

// Closes every descriptor but those in keep[] (sorted, ascending).
void close_all_but(const int* keep, int n) {
  unsigned from = 0;
  for (int i = 0; i < n; i++) {
    if (keep[i] < 0) continue;
    if (unsigned(keep[i]) > from) sys::call6(SYS_close_range, from, unsigned(keep[i]) - 1, 0);
    from = unsigned(keep[i]) + 1;
  }
  sys::call6(SYS_close_range, from, ~0u, 0);
}

void sort(int* v, int n) {
  for (int i = 1; i < n; i++) {
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      const int t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  }
}

int g_uffd_number = -1;

}  // namespace

void restore_mm() {
  const snap::ProcessRecord& p = *g_image.process;
  prctl_mm_map map = {};
  map.start_code = p.mm.start_code;
  map.end_code = p.mm.end_code;
  map.start_data = p.mm.start_data;
  map.end_data = p.mm.end_data;
  map.start_brk = p.mm.start_brk;
  map.brk = p.mm.brk;
  map.start_stack = p.mm.start_stack;
  map.arg_start = p.mm.arg_start;
  map.arg_end = p.mm.arg_end;
  map.env_start = p.mm.env_start;
  map.env_end = p.mm.env_end;
  map.auxv = reinterpret_cast<__u64*>(const_cast<uint64_t*>(p.auxv));
  map.auxv_size = p.auxv_words * 8;
  map.exe_fd = uint32_t(-1);
  long r = sys::call6(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, long(&map), sizeof map);
  if (r < 0) {
    Line l;
    l.s("uffdlazy: resume ").s(g_options.image).s(": warning: cannot restore the heap bounds (PR_SET_MM_MAP: ")
        .err(r).s("); the program's brk() will fail");
    l.emit();
  }
}

void restore_process_state() {
  const snap::ProcessRecord& p = *g_image.process;
  sys::call6(SYS_personality, p.personality);
  sys::call6(SYS_umask, p.umask);
  for (int sig = 1; sig <= int(snap::kSignals); sig++) {
    if (sig == 9 || sig == 19) continue;
    const snap::KernelSigaction& k = p.sigactions[sig - 1];
    sys::call6(SYS_rt_sigaction, sig, long(&k), 0, 8);
  }
}

bool room_for_lazy_resume() {
  const snap::Rlimit& as = g_image.process->rlimits[RLIMIT_AS];
  if (as.cur == RLIM_INFINITY) return true;
  // What the address space holds when the monitor maps the image to serve from it: every mapping,
  // the restorer's zone (its copy of the image, thread stacks, itself), and the monitor's image.
  uint64_t need = 2 * g_image.size + uint64_t(g_image.thread_count) * (64 << 10) + (64ull << 20);
  for (uint32_t i = 0; i < g_image.mapping_count; i++) {
    const snap::MappingRecord& m = g_image.mapping(i);
    if (m.kind != uint32_t(snap::MappingKind::kVsyscall)) need += m.end - m.start;
  }
  return need <= as.cur;
}

void restore_rlimits() {
  // Last: the program's limits may be lower than the descriptor numbers it (and the shim) holds.
  const snap::ProcessRecord& p = *g_image.process;
  for (uint32_t res = 0; res < snap::kRlimits; res++) {
    rlimit want = {p.rlimits[res].cur, p.rlimits[res].max};
    if (sys::call6(SYS_prlimit64, 0, res, long(&want), 0) == 0) continue;
    // Raising a hard limit needs privilege: keep ours, and the soft limit within it.
    rlimit have = {};
    sys::call6(SYS_prlimit64, 0, res, 0, long(&have));
    want.rlim_max = have.rlim_max;
    if (want.rlim_cur > want.rlim_max) want.rlim_cur = want.rlim_max;
    sys::call6(SYS_prlimit64, 0, res, long(&want), 0);
  }
}

int prepare_descriptors(int uffd) {
  const snap::ProcessRecord& p = *g_image.process;
  g_uffd_number = uffd >= 0 ? p.uffd_fd : -1;
  int highest = 2;
  for (uint32_t i = 0; i < g_image.descriptor_count; i++) {
    if (g_image.descriptor(i).fd > highest) highest = g_image.descriptor(i).fd;
  }
  if (p.uffd_fd > highest) highest = p.uffd_fd;
  if (g_options.image_fd > highest) highest = g_options.image_fd;
  if (uffd > highest) highest = uffd;
  // Room for every number the process needs (within our hard limit).
  rlimit nofile = {};
  sys::call6(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, long(&nofile));
  if (nofile.rlim_cur < uint64_t(highest) + 2 && nofile.rlim_max > nofile.rlim_cur) {
    nofile.rlim_cur = nofile.rlim_max;
    sys::call6(SYS_prlimit64, 0, RLIMIT_NOFILE, long(&nofile), 0);
  }
  // The resumer's descriptors (other than 0-2) must not leak into the process.
  int keep[5] = {0, 1, 2, g_options.image_fd, uffd};
  sort(keep, 5);
  close_all_but(keep, 5);
  const int image_fd = highest + 1;
  long r = sys::call6(SYS_dup3, g_options.image_fd, image_fd, O_CLOEXEC);
  if (r < 0) {
    Line l;
    l.s("uffdlazy: resume ").s(g_options.image).s(": cannot move the image's descriptor: ").err(r);
    die(kBroken, l);
  }
  sys::close(g_options.image_fd);
  g_options.image_fd = image_fd;
  if (uffd >= 0 && uffd != p.uffd_fd) {
    r = sys::call6(SYS_dup3, uffd, p.uffd_fd, O_CLOEXEC);
    if (r < 0) {
      Line l;
      l.s("uffdlazy: resume ").s(g_options.image).s(": cannot place the userfaultfd: ").err(r);
      die(kBroken, l);
    }
    sys::close(uffd);
  }
  return image_fd;
}

void monitor_descriptors(int image_fd) {
  // Its stderr (the resumer's, as the program's is) stays too: what the monitor has to say when
  // it cannot serve must reach someone.
  int keep[3] = {2, image_fd, g_uffd_number};
  sort(keep, 3);
  close_all_but(keep, 3);
}

void restore_descriptors() {
  // The image stays open in the monitor's table only.
  sys::close(g_options.image_fd);
  for (uint32_t i = 0; i < g_image.descriptor_count; i++) {
    const snap::DescriptorRecord& d = g_image.descriptor(i);
    const int cloexec = d.cloexec ? O_CLOEXEC : 0;
    long fd;
    switch (snap::DescriptorKind(d.kind)) {
      case snap::DescriptorKind::kShimUffd:
        continue;  // in place (or none: the shim then runs unpaged)
      case snap::DescriptorKind::kShimStderr:
        sys::call6(SYS_dup3, 2, d.fd, O_CLOEXEC);
        continue;
      case snap::DescriptorKind::kFile:
        fd = sys::openat(AT_FDCWD, g_image.descriptor_strings + d.path.offset, int(d.open_flags) | O_CLOEXEC);
        break;
      default:
        continue;
    }
    if (fd < 0) {
      Line l;
      l.s("uffdlazy: resume ").s(g_options.image).s(": cannot reopen descriptor ").u(uint64_t(d.fd)).s(" (")
          .s(g_image.descriptor_strings + d.path.offset).s("): ").err(fd);
      die(kBroken, l);
    }
    if (fd != d.fd) {
      long r = sys::call6(SYS_dup3, fd, d.fd, cloexec);
      sys::close(int(fd));
      if (r < 0) {
        Line l;
        l.s("uffdlazy: resume ").s(g_options.image).s(": cannot place descriptor ").u(uint64_t(d.fd)).s(": ").err(r);
        die(kBroken, l);
      }
    } else if (!cloexec) {
      sys::call6(SYS_fcntl, d.fd, F_SETFD, 0);
    }
    if (!(d.open_flags & O_APPEND) && ((d.mode & 0170000) == 0100000 || (d.mode & 0170000) == 0040000)) {
      sys::call6(SYS_lseek, d.fd, long(d.position), 0);
    }
  }
}

void restore_itimers() {
  const snap::ProcessRecord& p = *g_image.process;
  for (int which = 0; which < 3; which++) {
    const snap::Itimer& t = p.itimers[which];
    if (!t.value_sec && !t.value_usec) continue;
    itimerval it = {{t.interval_sec, t.interval_usec}, {t.value_sec, t.value_usec}};
    sys::call6(SYS_setitimer, which, long(&it), 0);
  }
}

}  // namespace restorer
