// A target program for memory the program takes for itself, or that something other than a plain
// access reads: its own userfaultfd, locked memory, /proc/PID/mem, ptrace, process_vm_readv, core
// dumps, and the number of mappings left to it. Each mode prints a deterministic account (never
// addresses) that a run under the shim must reproduce byte for byte, except where the tests say
// exactly what differs.
//
//   own_uffd syscall|device ioctl|syscall   the program's own userfaultfd registers ranges the shim
//                                  registered too (a sub-range, one across two mappings, a page)
//                                  and serves them; its REMOVE and UNMAP events
//   own_uffd_after_touch            the program registers the rest of a mapping whose first page
//                                  it touched: which pages fault to its handler
//   mlock FORM                      locked memory grown by mremap, dropped, unlocked; FORM: mlock,
//                                  mlock2, onfault, map_locked, mlockall_current, mlockall_future,
//                                  mlockall_onfault, syscall
//   proc_mem                        reads and writes of its own untouched memory through
//                                  /proc/self/mem (pread, pwrite, lseek + read/write, a read across
//                                  present and missing pages, a dup'ed descriptor, read-only memory)
//   proc_mem_uncovered              the same through stdio and preadv
//   other_process                   a parent reads and writes its child's untouched memory:
//                                  /proc/PID/mem, process_vm_readv/writev, ptrace PEEK/POKE
//   core_dump DIR                   a child writes some pages and aborts in DIR; the parent reads the
//                                  mapping back from the core file (core_pattern must be a plain name)
//   core_pages FILE ADDR PAGES      which of PAGES pages from ADDR a core file holds ('#') or not ('.')
//   map_count                       how many mappings the process has at start, and how many more it
//                                  may make (vm.max_map_count)
#include <elf.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));

char* map_pages(size_t pages, int prot = PROT_READ | PROT_WRITE, int extra = 0, void* at = nullptr) {
  void* p = mmap(at, pages * kPage, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
  if (p == MAP_FAILED) {
    std::printf("mmap failed: %s\n", strerror(errno));
    std::exit(1);
  }
  return static_cast<char*>(p);
}

const char* err_name(int e) {
  switch (e) {
    case 0: return "ok";
    case EIO: return "EIO";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    default: return strerror(e);
  }
}

// One character per page: its first byte, '.' for a zero byte.
std::string first_bytes(const char* base, size_t pages) {
  std::string s;
  for (size_t p = 0; p < pages; p++) s += base[p * kPage] ? base[p * kPage] : '.';
  return s;
}

// ---- own_uffd ----

// The program's own fault handler: each missing page gets a page full of one letter ('a' + page
// number within the 128 pages at `base`, mod 26; 'L' elsewhere); REMOVE and UNMAP events are counted.
struct Handler {
  int uffd = -1;
  char* base = nullptr;
  std::atomic<int> faults{0}, removes{0}, unmaps{0}, remaps{0};
  std::atomic<bool> stop{false};
  pthread_t thread{};
  char* page = nullptr;
};

void* handler_main(void* arg) {
  Handler* h = static_cast<Handler*>(arg);
  while (!h->stop.load()) {
    pollfd p = {h->uffd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    uffd_msg m;
    if (read(h->uffd, &m, sizeof m) != sizeof m) continue;
    if (m.event == UFFD_EVENT_PAGEFAULT) {
      const uintptr_t at = m.arg.pagefault.address & ~uintptr_t(kPage - 1);
      const uintptr_t index = (at - uintptr_t(h->base)) / kPage;
      memset(h->page, at >= uintptr_t(h->base) && index < 128 ? 'a' + int(index % 26) : 'L', kPage);
      uffdio_copy c = {at, uintptr_t(h->page), kPage, 0, 0};
      if (ioctl(h->uffd, UFFDIO_COPY, &c) == 0) h->faults++;
    } else if (m.event == UFFD_EVENT_REMOVE) {
      h->removes++;
    } else if (m.event == UFFD_EVENT_UNMAP) {
      h->unmaps++;
    } else if (m.event == UFFD_EVENT_REMAP) {
      h->remaps++;
    }
  }
  return nullptr;
}

int own_userfaultfd(const std::string& how) {
  int fd;
  if (how == "device") {
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return -1;
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    close(dev);
  } else {
    fd = int(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  }
  if (fd < 0) return -1;
  uffdio_api api = {UFFD_API, UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP, 0};
  if (ioctl(fd, UFFDIO_API, &api) != 0) return -1;
  return fd;
}

int do_ioctl(const std::string& via, int fd, unsigned long request, void* arg) {
  if (via == "syscall") return int(syscall(SYS_ioctl, fd, request, arg));
  return ioctl(fd, request, arg);
}

void report_register(const char* what, int r) { std::printf("register %s: %s\n", what, err_name(r ? errno : 0)); }

int own_uffd(const std::string& how, const std::string& via) {
  // Two mappings side by side (the second over the top half of the first: two regions for the
  // shim), and a lone page. The last page is touched first: the shim serves it (fault-around only
  // goes forward, so nothing else is in place).
  char* base = map_pages(128);
  if (mmap(base + 64 * kPage, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
      MAP_FAILED) {
    std::printf("MAP_FIXED failed\n");
    return 1;
  }
  char* lone = map_pages(1);
  base[127 * kPage] = 'Z';
  Handler h;
  h.uffd = own_userfaultfd(how);
  if (h.uffd < 0) {
    std::printf("own userfaultfd: %s\n", err_name(errno));
    return 1;
  }
  h.base = base;
  h.page = map_pages(1);
  // Pages 8..23 (inside the first mapping), 56..71 (across both), and the lone page.
  uffdio_register a = {{uintptr_t(base + 8 * kPage), 16 * kPage}, UFFDIO_REGISTER_MODE_MISSING, 0};
  report_register("pages 8..23", do_ioctl(via, h.uffd, UFFDIO_REGISTER, &a));
  uffdio_register b = {{uintptr_t(base + 56 * kPage), 16 * kPage}, UFFDIO_REGISTER_MODE_MISSING, 0};
  report_register("pages 56..71", do_ioctl(via, h.uffd, UFFDIO_REGISTER, &b));
  uffdio_register c = {{uintptr_t(lone), kPage}, UFFDIO_REGISTER_MODE_MISSING, 0};
  report_register("a lone page", do_ioctl(via, h.uffd, UFFDIO_REGISTER, &c));
  // Registering it again with another userfaultfd of the program's is refused, as ever.
  int other = own_userfaultfd(how);
  uffdio_register again = a;
  report_register("pages 8..23 with a second userfaultfd", do_ioctl(via, other, UFFDIO_REGISTER, &again));
  close(other);
  pthread_create(&h.thread, nullptr, handler_main, &h);

  std::printf("pages: %s\n", first_bytes(base, 128).c_str());
  std::printf("lone page: %c\n", lone[0] ? lone[0] : '.');
  bool whole = true;
  for (size_t p = 8; p < 24; p++)
    for (size_t i = 0; i < kPage; i++) whole &= base[p * kPage + i] == char('a' + p % 26);
  std::printf("pages 8..23 hold the handler's bytes throughout: %s\n", whole ? "yes" : "no");
  // Dropped pages fault to the program's handler again (a REMOVE first); an unmapped piece is its UNMAP.
  std::printf("madvise(DONTNEED) pages 60..61: %s\n",
              err_name(madvise(base + 60 * kPage, 2 * kPage, MADV_DONTNEED) ? errno : 0));
  base[60 * kPage + 1] = 'x';
  std::printf("pages 56..71 after: %s\n", first_bytes(base + 56 * kPage, 16).c_str());
  std::printf("munmap pages 70..71: %s\n", err_name(munmap(base + 70 * kPage, 2 * kPage) ? errno : 0));
  // Moved: its REMAP, and the pages go along (those never filled fault at the new place).
  char* dst = map_pages(8);
  void* moved = mremap(base + 64 * kPage, 6 * kPage, 6 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  std::printf("mremap pages 64..69 elsewhere: %s, they hold %s\n", err_name(moved == MAP_FAILED ? errno : 0),
              moved == MAP_FAILED ? "-" : first_bytes(dst, 6).c_str());
  uffdio_range un = {uintptr_t(base + 8 * kPage), 16 * kPage};
  std::printf("unregister pages 8..23: %s\n", err_name(do_ioctl(via, h.uffd, UFFDIO_UNREGISTER, &un) ? errno : 0));
  // Dropped after the program unregistered it: the kernel's zeros (the shim does not take it back).
  madvise(base + 8 * kPage, kPage, MADV_DONTNEED);
  std::printf("page 8 after unregister and madvise: %c\n", base[8 * kPage] ? base[8 * kPage] : '.');
  h.stop = true;
  pthread_join(h.thread, nullptr);
  std::printf("handler: faults=%d remove=%d unmap=%d remap=%d\n", h.faults.load(), h.removes.load(), h.unmaps.load(),
              h.remaps.load());
  return 0;
}

int own_uffd_after_touch() {
  char* base = map_pages(64);
  base[0] = 'A';  // the program's first touch, before it registers the rest
  Handler h;
  h.uffd = own_userfaultfd("syscall");
  h.base = base;
  h.page = map_pages(1);
  uffdio_register r = {{uintptr_t(base + kPage), 63 * kPage}, UFFDIO_REGISTER_MODE_MISSING, 0};
  report_register("pages 1..63", ioctl(h.uffd, UFFDIO_REGISTER, &r));
  pthread_create(&h.thread, nullptr, handler_main, &h);
  std::printf("pages: %s\n", first_bytes(base, 64).c_str());
  h.stop = true;
  pthread_join(h.thread, nullptr);
  std::printf("handler: faults=%d\n", h.faults.load());
  return 0;
}

// ---- mlock ----

int lock(const std::string& form, char** region, size_t pages) {
  if (form == "mlock") return mlock(*region, pages * kPage);
  if (form == "mlock2") return mlock2(*region, pages * kPage, 0);
  if (form == "onfault") return mlock2(*region, pages * kPage, MLOCK_ONFAULT);
  if (form == "syscall") return int(syscall(SYS_mlock, *region, pages * kPage));
  if (form == "mlockall_current") return mlockall(MCL_CURRENT);
  if (form == "mlockall_onfault") return mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
  if (form == "mlockall_future" || form == "map_locked") {
    // The region is made locked (the first, by the kernel's default; the second by its flag).
    if (form == "mlockall_future" && mlockall(MCL_FUTURE) != 0) return -1;
    munmap(*region, pages * kPage);
    *region = map_pages(pages, PROT_READ | PROT_WRITE, form == "map_locked" ? MAP_LOCKED : 0);
    (*region)[0] = 'A';
    (*region)[10 * kPage] = 'B';
    return 0;
  }
  errno = EINVAL;
  return -1;
}

int mlock_mode(const std::string& form) {
  char* r = map_pages(64);
  r[0] = 'A';
  r[10 * kPage] = 'B';
  std::printf("lock (%s): %s\n", form.c_str(), err_name(lock(form, &r, 64) ? errno : 0));
  // Locked pages cannot be dropped with MADV_DONTNEED; MADV_DONTNEED_LOCKED drops them.
  std::printf("madvise(DONTNEED) page 0: %s\n", err_name(madvise(r, kPage, MADV_DONTNEED) ? errno : 0));
  // Growing a locked mapping: the kernel populates the new part inside mremap.
  void* g = mremap(r, 64 * kPage, 256 * kPage, MREMAP_MAYMOVE);
  std::printf("mremap grow 64 -> 256 pages: %s\n", err_name(g == MAP_FAILED ? errno : 0));
  if (g == MAP_FAILED) return 1;
  r = static_cast<char*>(g);
  r[200 * kPage] = 'C';
  std::printf("madvise(DONTNEED_LOCKED) page 10: %s\n",
              err_name(madvise(r + 10 * kPage, kPage, MADV_DONTNEED_LOCKED) ? errno : 0));
  std::printf("pages 0, 10, 100, 200: %c%c%c%c\n", r[0] ? r[0] : '.', r[10 * kPage] ? r[10 * kPage] : '.',
              r[100 * kPage] ? r[100 * kPage] : '.', r[200 * kPage] ? r[200 * kPage] : '.');
  // Grown again after unlocking everything; then a fresh mapping, not locked any more.
  std::printf("munlockall: %s\n", err_name(munlockall() ? errno : 0));
  g = mremap(r, 256 * kPage, 512 * kPage, MREMAP_MAYMOVE);
  std::printf("mremap grow 256 -> 512 pages: %s\n", err_name(g == MAP_FAILED ? errno : 0));
  if (g == MAP_FAILED) return 1;
  r = static_cast<char*>(g);
  r[400 * kPage] = 'D';
  char* fresh = map_pages(64);
  fresh[5 * kPage] = 'E';
  void* f2 = mremap(fresh, 64 * kPage, 128 * kPage, MREMAP_MAYMOVE);
  std::printf("fresh mapping grown: %s\n", err_name(f2 == MAP_FAILED ? errno : 0));
  std::printf("pages: %c%c%c%c %c\n", r[0] ? r[0] : '.', r[200 * kPage] ? r[200 * kPage] : '.',
              r[400 * kPage] ? r[400 * kPage] : '.', r[500 * kPage] ? r[500 * kPage] : '.',
              f2 != MAP_FAILED ? static_cast<char*>(f2)[5 * kPage] : '?');
  return 0;
}

// ---- /proc/self/mem ----

std::string show(long r, const char* buf) {
  if (r < 0) return err_name(errno);
  std::string s = std::to_string(r) + " bytes \"";
  for (long i = 0; i < r && i < 8; i++) s += buf[i] ? buf[i] : '.';
  return s + "\"";
}

// Sum of all bytes read, so that a read of many pages prints one number.
unsigned sum(const char* buf, long n) {
  unsigned s = 0;
  for (long i = 0; i < n; i++) s = s * 31 + static_cast<unsigned char>(buf[i]);
  return s;
}

int proc_mem() {
  char* r = map_pages(64);
  char* ro = map_pages(64, PROT_READ);
  int fd = open("/proc/self/mem", O_RDWR);
  if (fd < 0) {
    std::printf("open /proc/self/mem: %s\n", err_name(errno));
    return 1;
  }
  char buf[8 * 4096] = {};
  long n = pread(fd, buf, 4, off_t(r + 5 * kPage));
  std::printf("pread of an untouched page: %s\n", show(n, buf).c_str());
  n = pwrite(fd, "hello", 5, off_t(r + 6 * kPage));
  std::printf("pwrite to an untouched page: %s, reads back \"%.5s\"\n", show(n, "hello").c_str(), r + 6 * kPage);
  lseek(fd, off_t(r + 7 * kPage + 100), SEEK_SET);
  n = read(fd, buf, 4);
  std::printf("lseek + read of an untouched page: %s\n", show(n, buf).c_str());
  // Read-only memory: the kernel writes it anyway (FOLL_FORCE), copying the page.
  lseek(fd, off_t(ro + 3 * kPage), SEEK_SET);
  n = write(fd, "ro", 2);
  std::printf("lseek + write to untouched read-only memory: %s, reads back \"%.2s\"\n", show(n, "ro").c_str(),
              ro + 3 * kPage);
  // Across pages present and missing: page 20 is touched (under the shim a few after it are then
  // in place too), the read goes on well past them.
  r[20 * kPage] = 'X';
  n = pread(fd, buf, sizeof buf, off_t(r + 19 * kPage));
  std::printf("pread of 8 pages across touched and untouched: %ld bytes, sum %u\n", n, n > 0 ? sum(buf, n) : 0);
  r[44 * kPage + 10] = 'Y';
  n = pwrite(fd, buf, sizeof buf, off_t(r + 40 * kPage));
  std::printf("pwrite of 8 pages across touched and untouched: %ld bytes, page 44 now %c\n", n,
              r[44 * kPage + 10] ? r[44 * kPage + 10] : '.');
  // A descriptor the program got by dup: the same file (page 62: past the pages that the shim's
  // fault-around put in place after page 44).
  int dup_fd = dup(fd);
  n = pread(dup_fd, buf, 4, off_t(r + 62 * kPage));
  std::printf("pread through a dup'ed descriptor: %s\n", show(n, buf).c_str());
  // Nothing mapped there: the kernel's EIO, with and without the shim.
  char* hole = map_pages(1);
  munmap(hole, kPage);
  n = pread(fd, buf, 4, off_t(hole));
  std::printf("pread of an unmapped address: %s\n", show(n, buf).c_str());
  close(dup_fd);
  close(fd);
  return 0;
}

int proc_mem_uncovered() {
  char* r = map_pages(64);
  char buf[16] = {};
  FILE* f = fopen("/proc/self/mem", "r");
  if (!f) return 1;
  setvbuf(f, nullptr, _IONBF, 0);
  fseeko(f, off_t(r + 5 * kPage), SEEK_SET);
  size_t got = fread(buf, 1, 4, f);
  std::printf("fread of an untouched page: %zu bytes\n", got);
  fclose(f);
  int fd = open("/proc/self/mem", O_RDONLY);
  iovec iov = {buf, 4};
  long n = preadv(fd, &iov, 1, off_t(r + 6 * kPage));
  std::printf("preadv of an untouched page: %s\n", show(n, buf).c_str());
  close(fd);
  return 0;
}

// ---- another process's memory ----

int other_process() {
  int to_parent[2], to_child[2];
  if (pipe(to_parent) || pipe(to_child)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    char* r = map_pages(64);
    r[0] = 'Q';
    uintptr_t a = uintptr_t(r);
    if (write(to_parent[1], &a, sizeof a) != sizeof a) _exit(2);
    char go;
    if (read(to_child[0], &go, 1) != 1) _exit(2);
    // What the parent wrote with process_vm_writev, and what it only read.
    const bool ok = r[21 * kPage] == 'W' && r[20 * kPage] == 0;
    _exit(ok ? 0 : 3);
  }
  uintptr_t a = 0;
  if (read(to_parent[0], &a, sizeof a) != sizeof a) return 1;
  char* r = reinterpret_cast<char*>(a);
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/mem", int(pid));
  int fd = open(path, O_RDWR);
  char buf[8] = {};
  long n = pread(fd, buf, 1, off_t(r));
  std::printf("/proc/PID/mem read of a touched page: %s\n", show(n, buf).c_str());
  n = pread(fd, buf, 4, off_t(r + 50 * kPage));
  std::printf("/proc/PID/mem read of an untouched page: %s\n", show(n, buf).c_str());
  n = pwrite(fd, "w", 1, off_t(r + 52 * kPage));
  std::printf("/proc/PID/mem write to an untouched page: %s\n", show(n, "w").c_str());
  close(fd);
  // Pages far from those the child touched (under the shim, its fault-around put the 15 pages after
  // each touched page in place), and from each other's.
  iovec local = {buf, 4}, remote = {r + 20 * kPage, 4};
  n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  std::printf("process_vm_readv of an untouched page: %s\n", show(n, buf).c_str());
  char w = 'W';
  iovec wlocal = {&w, 1}, wremote = {r + 21 * kPage, 1};
  n = process_vm_writev(pid, &wlocal, 1, &wremote, 1, 0);
  std::printf("process_vm_writev to an untouched page: %s\n", show(n, "W").c_str());
  // ptrace: the child's main thread stopped (its other threads, the shim's among them, run on).
  int status = 0;
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 &&
      waitpid(pid, &status, __WALL) == pid) {
    errno = 0;
    long word = ptrace(PTRACE_PEEKDATA, pid, r, 0);
    std::printf("ptrace PEEKDATA of a touched page: %s\n", errno ? err_name(errno) : (word & 0xff) == 'Q' ? "Q" : "?");
    errno = 0;
    word = ptrace(PTRACE_PEEKDATA, pid, r + 40 * kPage, 0);
    std::printf("ptrace PEEKDATA of an untouched page: %s\n", errno ? err_name(errno) : word == 0 ? "0" : "?");
    std::printf("ptrace POKEDATA to an untouched page: %s\n",
                err_name(ptrace(PTRACE_POKEDATA, pid, r + 42 * kPage, 7) ? errno : 0));
    ptrace(PTRACE_DETACH, pid, 0, 0);
  } else {
    std::printf("ptrace: %s\n", err_name(errno));
  }
  if (write(to_child[1], "g", 1) != 1) return 1;
  waitpid(pid, &status, 0);
  std::printf("child: %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "saw wrong pages");
  return 0;
}

// ---- core dumps ----

// The core file's name for process `pid`, from core_pattern (only a plain name, with %p and %%).
bool core_name(pid_t pid, std::string* name) {
  char pattern[256] = {};
  FILE* f = fopen("/proc/sys/kernel/core_pattern", "r");
  if (!f || !fgets(pattern, sizeof pattern, f)) return false;
  fclose(f);
  pattern[strcspn(pattern, "\n")] = 0;
  if (pattern[0] == '|' || strchr(pattern, '/')) return false;
  for (const char* p = pattern; *p; p++) {
    if (*p != '%') {
      *name += *p;
    } else if (p[1] == 'p') {
      *name += std::to_string(pid);
      p++;
    } else if (p[1] == '%') {
      *name += '%';
      p++;
    } else {
      return false;
    }
  }
  FILE* u = fopen("/proc/sys/kernel/core_uses_pid", "r");
  int uses_pid = 0;
  if (u && fscanf(u, "%d", &uses_pid) == 1 && uses_pid && !strstr(pattern, "%p")) *name += "." + std::to_string(pid);
  if (u) fclose(u);
  return !name->empty();
}

// What a core file holds for `pages` pages from `addr`: one entry per page, its first non-zero
// byte or 0 for a page of zeros (pages past a segment's file size, holes, read as zeros); empty when
// no segment holds addr. *threads: the threads the core records (NT_PRSTATUS notes).
std::vector<int> pages_in_core(const std::string& path, uintptr_t addr, size_t pages, int* threads) {
  std::vector<int> out;
  *threads = 0;
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return out;
  std::vector<char> core;
  char chunk[65536];
  for (size_t n; (n = fread(chunk, 1, sizeof chunk, f)) > 0;) core.insert(core.end(), chunk, chunk + n);
  fclose(f);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(core.data());
  if (core.size() < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_type != ET_CORE) return out;
  for (int i = 0; i < eh->e_phnum; i++) {
    const auto* ph = reinterpret_cast<const Elf64_Phdr*>(core.data() + eh->e_phoff + size_t(i) * eh->e_phentsize);
    if (ph->p_type == PT_NOTE) {
      for (size_t off = ph->p_offset; off + sizeof(Elf64_Nhdr) <= ph->p_offset + ph->p_filesz;) {
        const auto* nh = reinterpret_cast<const Elf64_Nhdr*>(core.data() + off);
        if (nh->n_type == NT_PRSTATUS) ++*threads;
        off += sizeof *nh + ((nh->n_namesz + 3) & ~3u) + ((nh->n_descsz + 3) & ~3u);
      }
    }
    // The segment holding addr: one per mapping (VMA), which may start below addr (neighbours merge).
    if (ph->p_type != PT_LOAD || addr < ph->p_vaddr || addr >= ph->p_vaddr + ph->p_memsz) continue;
    for (size_t p = 0; p < pages; p++) {
      int first = 0;
      for (size_t b = 0; b < kPage && !first; b++) {
        const size_t at = addr - ph->p_vaddr + p * kPage + b;
        first = at < ph->p_filesz ? static_cast<unsigned char>(core[ph->p_offset + at]) : 0;
      }
      out.push_back(first);
    }
  }
  return out;
}

int core_dump(const char* dir) {
  int to_parent[2];
  if (pipe(to_parent)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_CORE, &unlimited);
    if (chdir(dir)) _exit(2);
    char* r = map_pages(64);
    r[0] = 'A';
    r[30 * kPage + 7] = 'B';
    volatile char sink = r[50 * kPage];  // read, never written
    (void)sink;
    uintptr_t a = uintptr_t(r);
    if (write(to_parent[1], &a, sizeof a) != sizeof a) _exit(2);
    abort();
  }
  uintptr_t a = 0;
  if (read(to_parent[0], &a, sizeof a) != sizeof a) return 1;
  int status = 0;
  waitpid(pid, &status, 0);
  std::printf("child: %s, core dumped: %s\n", WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited",
              WIFSIGNALED(status) && WCOREDUMP(status) ? "yes" : "no");
  std::string name;
  if (!core_name(pid, &name)) {
    std::printf("core_pattern is not a plain file name: cannot find the core\n");
    return 1;
  }
  const std::string path = std::string(dir) + "/" + name;
  int threads = 0;
  const std::vector<int> pages = pages_in_core(path, a, 64, &threads);
  unlink(path.c_str());
  std::string shown;
  for (int c : pages) shown += c ? char(c) : '.';
  std::printf("the mapping in the core: %s\n", shown.empty() ? "missing" : shown.c_str());
  std::fprintf(stderr, "threads in the core: %d\n", threads);
  return 0;
}

// The pages of a core file written by another program: '#' for a page holding anything, '.' for zeros.
int core_pages(const char* path, const char* addr, const char* pages) {
  int threads = 0;
  const std::vector<int> got = pages_in_core(path, uintptr_t(strtoull(addr, nullptr, 0)), strtoul(pages, nullptr, 0),
                                             &threads);
  std::string shown;
  for (int c : got) shown += c ? '#' : '.';
  std::printf("%s\n", shown.empty() ? "missing" : shown.c_str());
  return got.empty() ? 1 : 0;
}

// ---- mappings left ----

// Where map_count's pages go: static, so that no mapping of the program's comes and goes with it.
void* g_maps[70000];

int map_count() {
  // The mappings the process has as main starts (the kernel's map_count: one per line of
  // /proc/self/maps, but for [vsyscall], which is the kernel's own).
  char line[512];
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return 1;
  int mappings = 0;
  while (fgets(line, sizeof line, f)) mappings += strstr(line, "[vsyscall]") == nullptr;
  fclose(f);
  std::printf("mappings at start: %d\n", mappings);
  // How many more it may make: single pages, alternately executable and readable-executable, so
  // that no two merge into one mapping, nor with a mapping the process has (no anonymous one is
  // executable). This count varies by one from run to run, with the layout: on stderr.
  size_t n = 0;
  while (n < sizeof g_maps / sizeof g_maps[0]) {
    void* p = mmap(nullptr, kPage, n % 2 ? PROT_READ | PROT_EXEC : PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    g_maps[n++] = p;
  }
  const int err = errno;
  for (size_t i = 0; i < n; i++) munmap(g_maps[i], kPage);
  std::fprintf(stderr, "mappings made before %s: %zu\n", err_name(err), n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "own_uffd" && argc > 3) return own_uffd(argv[2], argv[3]);
  if (mode == "own_uffd_after_touch") return own_uffd_after_touch();
  if (mode == "mlock" && argc > 2) return mlock_mode(argv[2]);
  if (mode == "proc_mem") return proc_mem();
  if (mode == "proc_mem_uncovered") return proc_mem_uncovered();
  if (mode == "other_process") return other_process();
  if (mode == "core_dump" && argc > 2) return core_dump(argv[2]);
  if (mode == "core_pages" && argc > 4) return core_pages(argv[2], argv[3], argv[4]);
  if (mode == "map_count") return map_count();
  std::fprintf(stderr, "usage: program_claims own_uffd syscall|device ioctl|syscall | own_uffd_after_touch | mlock FORM"
                       " | proc_mem | proc_mem_uncovered | other_process | core_dump DIR | core_pages FILE ADDR PAGES | map_count\n");
  return 2;
}
