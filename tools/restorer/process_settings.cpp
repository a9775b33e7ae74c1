// The settings a checkpoint kept besides memory, threads and descriptors
// (core/snapshot/process_settings_format.h). The process-wide ones are set before the point of no
// return, on the restorer itself (which becomes the program: the memory-management ones belong to
// its mm, which it keeps), and a resume that cannot set one is refused with one line rather than
// going on without it. What only the restorer's own work would trip over (memory-deny-write-
// execute) comes after it, as do each thread's own settings (on the thread) and the leases (on the
// reopened descriptors): those can no longer refuse, and say so in one line when the kernel says no.
#include <cerrno>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <linux/prctl.h>

#include "core/checkpoint/settings_syscalls.h"
#include "tools/restorer/restorer.h"

#if defined(__x86_64__)
#include <asm/prctl.h>
#endif

namespace restorer {

namespace st = uffdlazy::settings;

namespace {

Line& resume_line(Line& l) { return l.s("uffdlazy: resume ").s(g_options.image).s(": "); }

[[noreturn]] void refuse(Line& l) { die(kRefused, l); }

// After the point of no return: the program goes on, told what it lost.
void warn(Line& l) { l.emit(); }

bool write_number_file(const char* path, int64_t v) {
  const long fd = sys::openat(AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[24];
  size_t n = 0;
  uint64_t u = v < 0 ? uint64_t(-v) : uint64_t(v);
  char digits[24];
  size_t k = 0;
  do {
    digits[k++] = char('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) buf[n++] = '-';
  while (k) buf[n++] = digits[--k];
  const long w = sys::write(int(fd), buf, n);
  sys::close(int(fd));
  return w == long(n);
}

uint32_t g_groups[65536];  // the image's group list, aligned

void restore_ids_and_groups(const snap::ProcessRecord& p, const snap::ProcessSettings& s) {
  Line l;
  memcpy(g_groups, g_image.process_strings + s.groups.offset, uint64_t(s.group_count) * 4);
  // Groups first: they need CAP_SETGID, which a change of ids may drop.
  const long have = sys::call6(SYS_getgroups, 0, 0);
  static uint32_t mine[65536];
  bool same = have == long(s.group_count) && sys::call6(SYS_getgroups, have, long(mine)) == have;
  for (uint32_t i = 0; same && i < s.group_count; i++) same = mine[i] == g_groups[i];
  if (!same) {
    const long r = sys::call6(SYS_setgroups, s.group_count, long(g_groups));
    if (r < 0) {
      resume_line(l).s("the process had ").u(s.group_count).s(" supplementary groups other than this resume's, and ")
          .s("they cannot be set here (setgroups: ").err(r).s(")");
      refuse(l);
    }
  }
  uint32_t ids[3];
  sys::call6(SYS_getresgid, long(&ids[0]), long(&ids[1]), long(&ids[2]));
  if (ids[0] != p.gid || ids[1] != p.egid || ids[2] != s.sgid) {
    const long r = sys::call6(SYS_setresgid, p.gid, p.egid, s.sgid);
    if (r < 0) {
      resume_line(l).s("the process ran with group ids ").u(p.gid).s("/").u(p.egid).s("/").u(s.sgid)
          .s(" (real/effective/saved), this is ").u(ids[0]).s("/").u(ids[1]).s("/").u(ids[2])
          .s(", and they cannot be set here (setresgid: ").err(r).s(")");
      refuse(l);
    }
  }
  sys::call6(SYS_getresuid, long(&ids[0]), long(&ids[1]), long(&ids[2]));
  if (ids[2] != s.suid) {
    const long r = sys::call6(SYS_setresuid, -1, -1, s.suid);
    if (r < 0) {
      resume_line(l).s("the process's saved user id was ").u(s.suid).s(", this is ").u(ids[2])
          .s(", and it cannot be set here (setresuid: ").err(r).s(")");
      refuse(l);
    }
  }
  // setfsuid and setfsgid answer with the previous id whatever happens: ask again.
  sys::call6(SYS_setfsgid, s.fsgid);
  sys::call6(SYS_setfsuid, s.fsuid);
  if (uint32_t(sys::call6(SYS_setfsgid, -1)) != s.fsgid || uint32_t(sys::call6(SYS_setfsuid, -1)) != s.fsuid) {
    resume_line(l).s("the process's filesystem ids (uid ").u(s.fsuid).s(", gid ").u(s.fsgid)
        .s(") cannot be set here");
    refuse(l);
  }
}

void check_namespaces(const snap::ProcessSettings& s) {
  for (uint32_t i = 0; i < snap::kNamespaces; i++) {
    if (!s.namespaces[i]) continue;
    const uint64_t here = st::namespace_inode(snap::kNamespaceNames[i]);
    if (here && here != s.namespaces[i]) {
      Line l;
      resume_line(l).s("the process ran in another ").s(snap::kNamespaceNames[i]).s(" namespace (inode ")
          .u(s.namespaces[i]).s(", this is ").u(here).s("): a resume does not enter namespaces");
      refuse(l);
    }
  }
}

void membarrier_register(uint32_t bit, int command, const char* name, const snap::ProcessSettings& s) {
  if (!(s.membarrier & bit)) return;
  const long r = sys::call6(SYS_membarrier, command, 0, 0);
  if (r < 0) {
    Line l;
    resume_line(l).s("the process was registered for membarrier ").s(name).s(", and this kernel refuses it: ").err(r);
    refuse(l);
  }
}

// A lease the resume could not take again after the point of no return would be lost: try each
// on the file before it (and give it back).
void check_leases() {
  for (uint32_t i = 0; i < g_image.descriptor_count; i++) {
    const snap::DescriptorRecord& d = g_image.descriptor(i);
    if (!(d.lease & 3)) continue;
    const char* path = g_image.descriptor_strings + d.path.offset;
    const long fd = sys::openat(AT_FDCWD, path, int(d.open_flags & O_ACCMODE) | O_CLOEXEC);
    long r = fd;
    if (fd >= 0) {
      r = sys::call6(SYS_fcntl, fd, F_SETLEASE, (d.lease & 3) == snap::kLeaseRead ? F_RDLCK : F_WRLCK);
      if (r == 0) sys::call6(SYS_fcntl, fd, F_SETLEASE, F_UNLCK);
      sys::close(int(fd));
    }
    if (r < 0) {
      Line l;
      resume_line(l).s("the process held a ").s((d.lease & 3) == snap::kLeaseRead ? "read" : "write")
          .s(" lease on descriptor ").u(uint64_t(d.fd)).s(" (").s(path).s("), and it cannot be taken here: ").err(r);
      refuse(l);
    }
  }
}

}  // namespace

void restore_process_settings() {
  const snap::ProcessRecord& p = *g_image.process;
  const snap::ProcessSettings& s = g_image.settings();
  if (!s.known && !s.group_count && !s.suid && !s.fsuid) return;  // an image from before settings were kept
  Line l;
  check_namespaces(s);
  restore_ids_and_groups(p, s);
  snap::ProcessSettings here;
  st::read_process_settings(&here);
  if ((s.known & snap::kKnownOomScoreAdj) && (here.known & snap::kKnownOomScoreAdj) &&
      s.oom_score_adj != here.oom_score_adj && !write_number_file("/proc/self/oom_score_adj", s.oom_score_adj)) {
    resume_line(l).s("the process had oom_score_adj ").i(s.oom_score_adj).s(", this resume has ").i(here.oom_score_adj)
        .s(", and lowering it needs CAP_SYS_RESOURCE");
    refuse(l);
  }
  if ((s.known & snap::kKnownCoredumpFilter) && s.coredump_filter != here.coredump_filter) {
    write_number_file("/proc/self/coredump_filter", s.coredump_filter);  // hexadecimal or not, the kernel takes it
  }
  if ((s.known & snap::kKnownThpDisable) && s.thp_disable != here.thp_disable) {
    const long r = st::prctl(PR_SET_THP_DISABLE, s.thp_disable & 1, s.thp_disable >> 1);
    if (r < 0) {
      resume_line(l).s("the process had transparent huge pages disabled (PR_SET_THP_DISABLE ").u(s.thp_disable)
          .s("), and this kernel refuses it: ").err(r);
      refuse(l);
    }
  }
  if ((s.known & snap::kKnownMemoryMerge) && s.memory_merge != here.memory_merge) {
    const long r = st::prctl(st::kPrSetMemoryMerge, s.memory_merge);
    if (r < 0) {
      resume_line(l).s("the process had PR_SET_MEMORY_MERGE ").u(s.memory_merge).s(", and it cannot be set here: ").err(r);
      refuse(l);
    }
  }
  if (s.known & snap::kKnownMembarrier) {
    membarrier_register(snap::kMembarrierPrivateExpedited, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                        "private expedited", s);
    membarrier_register(snap::kMembarrierPrivateExpeditedSyncCore,
                        MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, "private expedited sync-core", s);
    membarrier_register(snap::kMembarrierPrivateExpeditedRseq, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
                        "private expedited rseq", s);
    membarrier_register(snap::kMembarrierGlobalExpedited, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
                        "global expedited", s);
  }
  check_leases();
  if (s.child_subreaper != here.child_subreaper) st::prctl(PR_SET_CHILD_SUBREAPER, s.child_subreaper);
#if defined(__x86_64__)
  if ((s.known & snap::kKnownXcompPerm) && (here.known & snap::kKnownXcompPerm)) {
    for (int f = 0; f < 64; f++) {
      if (!((s.xcomp_perm & ~here.xcomp_perm) >> f & 1)) continue;
      const long r = sys::call6(SYS_arch_prctl, st::kArchReqXcompPerm, f);
      if (r < 0) {
        resume_line(l).s("the process had permission to use XSAVE feature ").u(uint64_t(f))
            .s(" (ARCH_REQ_XCOMP_PERM), and this kernel refuses it: ").err(r);
        refuse(l);
      }
    }
  }
  if ((s.known & snap::kKnownUntagMask) && (here.known & snap::kKnownUntagMask) && s.untag_mask != here.untag_mask) {
    // Linear address masking: the restorer is still single-threaded, as the kernel requires.
    long bits = 0;  // the tag's width: the bits the mask clears (no popcount: nothing of libgcc here)
    for (uint64_t m = ~s.untag_mask; m; m &= m - 1) bits++;
    const long r = sys::call6(SYS_arch_prctl, st::kArchEnableTaggedAddr, bits);
    if (r < 0) {
      resume_line(l).s("the process used tagged addresses (untag mask ").x(s.untag_mask)
          .s("), and they cannot be enabled here: ").err(r);
      refuse(l);
    }
  }
#endif
}

void restore_late_settings() {
  const snap::ProcessSettings& s = g_image.settings();
  // dumpable 2 was refused by the checkpoint; 0 (and 1) anyone may set.
  if (s.known) st::prctl(PR_SET_DUMPABLE, s.dumpable);
  if ((s.known & snap::kKnownMdwe) && s.mdwe) {
    const long r = st::prctl(st::kPrSetMdwe, s.mdwe);
    if (r < 0) {
      Line l;
      warn(resume_line(l).s("warning: memory-deny-write-execute (PR_SET_MDWE ").u(s.mdwe).s(") not set again: ").err(r));
    }
  }
}

void restore_thread_settings(const snap::ThreadRecord& t) {
  const snap::ThreadSettings& s = g_image.thread_settings(t);
  Line l;
  auto lost = [&](const char* what, long r) {
    warn(resume_line(l).s("warning: thread ").u(t.old_tid).s("'s ").s(what).s(" not set again: ").err(r));
  };
  long r;
  if (s.known & snap::kKnownSched) {
    st::SchedAttr a = {};
    a.size = (s.known & snap::kKnownUtilClamp) ? sizeof a : 48;
    a.policy = s.policy;
    a.flags = s.sched_flags;
    a.nice = s.nice;
    a.priority = s.rt_priority;
    a.runtime = s.dl_runtime;
    a.deadline = s.dl_deadline;
    a.period = s.dl_period;
    a.util_min = s.util_min;
    a.util_max = s.util_max;
    st::SchedAttr now = {};
    sys::call6(SYS_sched_getattr, 0, long(&now), sizeof now, 0);
    // Utilization clamps are set only when the thread had them (the flags say).
    if (now.policy != a.policy || now.nice != a.nice || now.priority != a.priority || now.flags != a.flags ||
        now.runtime != a.runtime) {
      if ((r = sys::call6(SYS_sched_setattr, 0, long(&a), 0)) < 0) lost("scheduling policy and priority", r);
    }
  }
  if ((s.known & snap::kKnownAffinity) &&
      (r = sys::call6(SYS_sched_setaffinity, 0, sizeof s.affinity, long(s.affinity))) < 0) {
    lost("CPU affinity", r);
  }
  if ((s.known & snap::kKnownIoprio) && sys::call6(SYS_ioprio_get, st::kIoprioWhoProcess, 0) != long(s.ioprio) &&
      (r = sys::call6(SYS_ioprio_set, st::kIoprioWhoProcess, 0, s.ioprio)) < 0) {
    lost("I/O priority", r);
  }
  st::prctl(PR_SET_PDEATHSIG, s.pdeath_signal);
  if (s.timer_slack_ns) st::prctl(PR_SET_TIMERSLACK, long(s.timer_slack_ns));
  if (s.no_new_privs) st::prctl(PR_SET_NO_NEW_PRIVS, 1);
  if ((s.known & snap::kKnownMceKill)) {
    if (s.mce_kill == PR_MCE_KILL_DEFAULT) st::prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR);
    else st::prctl(PR_MCE_KILL, PR_MCE_KILL_SET, s.mce_kill);
  }
  if ((s.known & snap::kKnownTsc) && s.tsc == PR_TSC_SIGSEGV && (r = st::prctl(PR_SET_TSC, s.tsc)) < 0) lost("PR_SET_TSC", r);
#if defined(__x86_64__)
  // CPUID faulting: only a thread that turned cpuid off has anything to set again.
  if ((s.known & snap::kKnownCpuid) && s.cpuid == 0 && (r = sys::call6(SYS_arch_prctl, st::kArchSetCpuid, 0)) < 0) {
    lost("ARCH_SET_CPUID", r);
  }
#endif
  for (uint32_t i = 0; i < snap::kSpeculationControls; i++) {
    if (!(s.known & (snap::kKnownSpeculation << i))) continue;
    const long now = st::prctl(PR_GET_SPECULATION_CTRL, long(i));
    const long want = s.speculation[i] & (PR_SPEC_ENABLE | PR_SPEC_DISABLE | PR_SPEC_FORCE_DISABLE | PR_SPEC_DISABLE_NOEXEC);
    if (!(s.speculation[i] & PR_SPEC_PRCTL) || now == s.speculation[i] || !want) continue;
    if ((r = st::prctl(PR_SET_SPECULATION_CTRL, long(i), want)) < 0) lost("speculation control", r);
  }
  if (s.known & snap::kKnownCapabilities) {
    // Only ever fewer: the ambient set, the bounding set, then the three sets.
    for (int cap = 0; cap <= st::kLastCapability; cap++) {
      if (st::prctl(PR_CAPBSET_READ, cap) < 0) break;
      if (!(s.cap_ambient >> cap & 1) && st::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap) == 1) {
        st::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap);
      }
      if (!(s.cap_bounding >> cap & 1) && st::prctl(PR_CAPBSET_READ, cap) == 1) st::prctl(PR_CAPBSET_DROP, cap);
    }
    uint64_t e, p, i;
    if (st::read_capabilities(&e, &p, &i) && (e != s.cap_effective || p != s.cap_permitted || i != s.cap_inheritable)) {
      __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct d[2] = {};
      d[0] = {uint32_t(s.cap_effective), uint32_t(s.cap_permitted), uint32_t(s.cap_inheritable)};
      d[1] = {uint32_t(s.cap_effective >> 32), uint32_t(s.cap_permitted >> 32), uint32_t(s.cap_inheritable >> 32)};
      if ((r = sys::call6(SYS_capset, long(&h), long(d))) < 0) lost("capabilities", r);
    }
    for (int cap = 0; cap <= st::kLastCapability; cap++) {
      if ((s.cap_ambient >> cap & 1) && st::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap) == 0 &&
          (r = st::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)) < 0) {
        lost("ambient capabilities", r);
        break;
      }
    }
  }
}

void restore_leases() {
  for (uint32_t i = 0; i < g_image.descriptor_count; i++) {
    const snap::DescriptorRecord& d = g_image.descriptor(i);
    if (!(d.lease & 3)) continue;
    if (d.lease >> 8) sys::call6(SYS_fcntl, d.fd, F_SETSIG, long(d.lease >> 8));
    const long r = sys::call6(SYS_fcntl, d.fd, F_SETLEASE, (d.lease & 3) == snap::kLeaseRead ? F_RDLCK : F_WRLCK);
    if (r < 0) {
      Line l;
      warn(resume_line(l).s("warning: the lease on descriptor ").u(uint64_t(d.fd)).s(" (")
               .s(g_image.descriptor_strings + d.path.offset).s(") not taken again: ").err(r));
    }
  }
}

}  // namespace restorer
