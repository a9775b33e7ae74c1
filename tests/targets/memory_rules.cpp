// A target program for the end-to-end tests: each scenario exercises one rule of lazy paging
// through the plain libc calls a real program makes, checks every page itself, and prints a
// deterministic account. The tests run it with and without the shim and expect the same output
// byte for byte, and exit status 0 (every check held).
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/time.h>
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

#include "tests/targets/paced_signals.h"

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));
int failures = 0;

void check(bool ok, const char* what, size_t page = SIZE_MAX) {
  if (ok) return;
  failures++;
  if (page == SIZE_MAX) {
    std::printf("FAIL %s\n", what);
  } else {
    std::printf("FAIL %s (page %zu)\n", what, page);
  }
}

char* map_anon(size_t pages, int prot = PROT_READ | PROT_WRITE) {
  void* p = mmap(nullptr, pages * kPage, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(2);
  }
  return static_cast<char*>(p);
}

uint64_t tag_for(size_t page, uint64_t salt) { return (page + 1) * 0x9E3779B97F4A7C15ull ^ salt; }

// Writes a tag at both ends of a page so torn or stale pages show.
void stamp(char* base, size_t page, uint64_t salt) {
  uint64_t t = tag_for(page, salt);
  std::memcpy(base + page * kPage, &t, 8);
  std::memcpy(base + page * kPage + kPage - 8, &t, 8);
}

bool stamped(const char* base, size_t page, uint64_t salt) {
  uint64_t a, b, t = tag_for(page, salt);
  std::memcpy(&a, base + page * kPage, 8);
  std::memcpy(&b, base + page * kPage + kPage - 8, 8);
  return a == t && b == t;
}

bool all_zero(const char* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

uint64_t checksum(const char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ uint8_t(p[i])) * 1099511628211ull;
  return h;
}

int touch(size_t pages) {
  char* m = map_anon(pages);
  for (size_t i = 0; i < pages; i++) check(all_zero(m + i * kPage, kPage), "fresh page reads zero", i);
  for (size_t i = 0; i < pages; i++) stamp(m, i, 1);
  for (size_t i = 0; i < pages; i++) check(stamped(m, i, 1), "written page keeps its data", i);
  std::printf("touch pages=%zu checksum=%016llx\n", pages, (unsigned long long)checksum(m, pages * kPage));
  return 0;
}

int dontneed(int advice) {
  const size_t n = 64;
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i++) stamp(m, i, 2);
  if (madvise(m + 16 * kPage, 16 * kPage, advice) != 0) {
    std::printf("madvise: %s\n", std::strerror(errno));
    return 2;
  }
  if (advice == MADV_FREE) madvise(m + 16 * kPage, 16 * kPage, MADV_PAGEOUT);  // force the reclaim
  for (size_t i = 0; i < n; i++) {
    bool dropped = i >= 16 && i < 32;
    if (dropped) {
      check(all_zero(m + i * kPage, kPage), "dropped page reads zero", i);
    } else {
      check(stamped(m, i, 2), "kept page keeps its data", i);
    }
  }
  // The dropped pages work as fresh memory afterwards.
  for (size_t i = 16; i < 32; i++) stamp(m, i, 3);
  for (size_t i = 16; i < 32; i++) check(stamped(m, i, 3), "rewritten page keeps its data", i);
  std::printf("madvise advice=%d ok\n", advice);
  return 0;
}

int unmap_and_fixed() {
  const size_t n = 32;
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i++) stamp(m, i, 4);
  // Punch a hole, then map fresh memory into it: the hole must read zeros, the rest keep data.
  munmap(m + 8 * kPage, 8 * kPage);
  void* p = mmap(m + 8 * kPage, 8 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  check(p == m + 8 * kPage, "MAP_FIXED into the hole");
  // MAP_FIXED straight over live, written pages resets them too.
  void* q = mmap(m + 20 * kPage, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  check(q == m + 20 * kPage, "MAP_FIXED over live pages");
  for (size_t i = 0; i < n; i++) {
    bool fresh = (i >= 8 && i < 16) || (i >= 20 && i < 24);
    if (fresh) {
      check(all_zero(m + i * kPage, kPage), "remapped page reads zero", i);
    } else {
      check(stamped(m, i, 4), "untouched neighbour keeps data", i);
    }
  }
  std::printf("unmap+fixed ok\n");
  return 0;
}

int remap() {
  // Move: half the pages written, half never touched.
  const size_t n = 32;
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i += 2) stamp(m, i, 5);
  char* moved = static_cast<char*>(mremap(m, n * kPage, n * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, map_anon(n)));
  check(moved != MAP_FAILED, "mremap move");
  for (size_t i = 0; i < n; i++) {
    if (i % 2 == 0) {
      check(stamped(moved, i, 5), "moved page keeps data", i);
    } else {
      check(all_zero(moved + i * kPage, kPage), "moved untouched page reads zero", i);
    }
  }
  // Grow (in place or moving) and shrink.
  char* grown = static_cast<char*>(mremap(moved, n * kPage, 2 * n * kPage, MREMAP_MAYMOVE));
  check(grown != MAP_FAILED, "mremap grow");
  for (size_t i = 0; i < 2 * n; i++) {
    if (i < n && i % 2 == 0) {
      check(stamped(grown, i, 5), "grown region keeps data", i);
    } else {
      check(all_zero(grown + i * kPage, kPage), "grown region's new pages read zero", i);
    }
  }
  for (size_t i = n; i < 2 * n; i++) stamp(grown, i, 6);
  char* shrunk = static_cast<char*>(mremap(grown, 2 * n * kPage, n / 2 * kPage, 0));
  check(shrunk == grown, "mremap shrink");
  for (size_t i = 0; i < n / 2; i++) {
    if (i % 2 == 0) {
      check(stamped(shrunk, i, 5), "shrunk region keeps data", i);
    } else {
      check(all_zero(shrunk + i * kPage, kPage), "shrunk region's untouched page reads zero", i);
    }
  }
  // Growing again must not bring the cut tail back.
  char* regrown = static_cast<char*>(mremap(shrunk, n / 2 * kPage, 2 * n * kPage, MREMAP_MAYMOVE));
  check(regrown != MAP_FAILED, "mremap regrow");
  for (size_t i = n / 2; i < 2 * n; i++) check(all_zero(regrown + i * kPage, kPage), "cut tail stays zero", i);
  // DONTUNMAP: the old range stays mapped and reads zeros.
  char* src = map_anon(n);
  for (size_t i = 0; i < n; i++) stamp(src, i, 7);
  char* dst = static_cast<char*>(mremap(src, n * kPage, n * kPage, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, nullptr));
  check(dst != MAP_FAILED, "mremap dontunmap");
  for (size_t i = 0; i < n; i++) {
    check(stamped(dst, i, 7), "dontunmap destination keeps data", i);
    check(all_zero(src + i * kPage, kPage), "dontunmap source reads zero", i);
  }
  std::printf("remap ok\n");
  return 0;
}

int threads_same_pages(int nthreads) {
  const size_t n = 256;
  char* m = map_anon(n);
  std::atomic<int> go{0};
  std::atomic<long> bad{0};
  std::vector<pthread_t> ts(static_cast<size_t>(nthreads));
  struct Arg {
    char* m;
    size_t n;
    std::atomic<int>* go;
    std::atomic<long>* bad;
  } arg{m, n, &go, &bad};
  for (auto& t : ts) {
    pthread_create(&t, nullptr, [](void* p) -> void* {
      auto* a = static_cast<Arg*>(p);
      while (!a->go->load()) {
      }
      // Every thread reads every page at once: many threads fault on one page.
      for (size_t i = 0; i < a->n; i++) {
        if (a->m[i * kPage + 7] != 0) a->bad->fetch_add(1);
      }
      return nullptr;
    }, &arg);
  }
  go.store(1);
  for (auto& t : ts) pthread_join(t, nullptr);
  check(bad.load() == 0, "concurrent readers all see zeros");
  std::printf("threads=%d pages=%zu ok\n", nthreads, n);
  return 0;
}

int read_syscall() {
  // A kernel-mode fault: read(2) writes into a page nobody has touched yet.
  const size_t n = 16;
  char* m = map_anon(n);
  int fds[2];
  if (pipe(fds)) return 2;
  std::string msg = "kernel-mode fault payload";
  if (write(fds[1], msg.data(), msg.size()) != ssize_t(msg.size())) return 2;
  ssize_t r = read(fds[0], m + 5 * kPage + 100, msg.size());
  check(r == ssize_t(msg.size()), "read(2) into a lazy page succeeds");
  check(std::memcmp(m + 5 * kPage + 100, msg.data(), msg.size()) == 0, "read(2) data arrived");
  // write(2) sourcing an untouched page: the kernel reads zeros from it.
  check(write(fds[1], m + 9 * kPage, 64) == 64, "write(2) from a lazy page succeeds");
  char back[64];
  std::memset(back, 1, sizeof back);
  check(read(fds[0], back, sizeof back) == 64 && all_zero(back, sizeof back), "write(2) sent zeros");
  std::printf("syscalls read=%zd ok\n", r);
  return 0;
}

int fork_child_sees_parent() {
  const size_t n = 64;
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i += 3) stamp(m, i, 8);
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
      bool ok = i % 3 == 0 ? stamped(m, i, 8) : all_zero(m + i * kPage, kPage);
      if (!ok) bad++;
    }
    // The child's own new memory works too.
    char* mine = map_anon(32);
    for (size_t i = 0; i < 32; i++) stamp(mine, i, 9);
    for (size_t i = 0; i < 32; i++)
      if (!stamped(mine, i, 9)) bad++;
    for (size_t i = 0; i < n; i++) stamp(m, i, 10);  // the child's writes stay its own
    _exit(bad ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw the parent's memory exactly");
  for (size_t i = 0; i < n; i++) {
    bool ok = i % 3 == 0 ? stamped(m, i, 8) : all_zero(m + i * kPage, kPage);
    check(ok, "parent unchanged by the child's writes", i);
  }
  std::printf("fork ok\n");
  return 0;
}

int exec_child() {
  // An exec'd child starts with memory of its own.
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/proc/self/exe", "memory_rules", "touch", "8", (char*)nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec'd child ran clean");
  std::printf("exec ok\n");
  return 0;
}

void hide_proc();

int move_across_mappings(bool without_proc) {
  // One allocation split into three mappings by mprotect, half written, moved as one range: since
  // Linux 6.17 the kernel moves ranges that span several mappings. The result must be the same
  // with and without the shim (on an older kernel both refuse with EFAULT).
  if (without_proc) hide_proc();
  const size_t n = 64;
  char* m = map_anon(n);
  for (size_t i = 0; i < n / 2; i++) stamp(m, i, 11);
  mprotect(m + 16 * kPage, 16 * kPage, PROT_READ);
  char* dst = map_anon(n, PROT_NONE);
  char* moved = static_cast<char*>(mremap(m, n * kPage, n * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dst));
  if (moved == MAP_FAILED) {
    std::printf("move across mappings: %s\n", std::strerror(errno));
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (i < n / 2) {
      check(stamped(moved, i, 11), "moved page keeps data", i);
    } else {
      check(all_zero(moved + i * kPage, kPage), "moved untouched page reads zero", i);
    }
  }
  mprotect(moved + 16 * kPage, 16 * kPage, PROT_READ | PROT_WRITE);
  for (size_t i = 0; i < n; i++) stamp(moved, i, 12);
  for (size_t i = 0; i < n; i++) check(stamped(moved, i, 12), "moved range is ordinary memory afterwards", i);
  std::printf("move across mappings ok\n");
  return 0;
}

// Hides /proc from this process: a private mount namespace with an empty tmpfs over /proc, so
// that /proc/self/maps cannot be opened (as in a container or chroot without /proc).
void hide_proc() {
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("none", "/proc", "tmpfs", 0, nullptr) != 0) {
    std::perror("hiding /proc");
    std::exit(2);
  }
  if (access("/proc/self/maps", R_OK) == 0) {
    std::fprintf(stderr, "/proc/self/maps still readable\n");
    std::exit(2);
  }
}

int move_many_mappings(size_t n, bool without_proc) {
  // n pages, every other one made read-only (n mappings), two of every three written, one page in
  // the middle unmapped (a gap), moved as one range. Since Linux 6.17 the kernel moves such a range
  // whatever the number of mappings and keeps the gap; before, it refuses with EFAULT. The result
  // must be the same with and without the shim, page by page, with and without /proc.
  if (without_proc) hide_proc();
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i++) {
    if (i % 3 != 2) stamp(m, i, 21);
  }
  for (size_t i = 1; i < n; i += 2) mprotect(m + i * kPage, kPage, PROT_READ);
  const size_t gap = n / 2 | 1;
  munmap(m + gap * kPage, kPage);
  char* dst = map_anon(n, PROT_NONE);
  errno = 0;
  char* moved = static_cast<char*>(mremap(m, n * kPage, n * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dst));
  if (moved == MAP_FAILED) {
    std::printf("move many mappings (%zu): %s\n", n, std::strerror(errno));
    // Nothing may have moved: every page is still where it was, with its data.
    for (size_t i = 0; i < n; i++) {
      if (i == gap) continue;
      check(i % 3 == 2 ? all_zero(m + i * kPage, kPage) : stamped(m, i, 21), "page left in place", i);
    }
    return 0;
  }
  check(moved == dst, "moved to the address asked for");
  unsigned char v;
  for (size_t i = 0; i < n; i++) {
    check(mincore(m + i * kPage, kPage, &v) != 0 && errno == ENOMEM, "old range unmapped", i);
    if (i == gap) {
      // The kernel leaves the destination's page facing the gap as it was.
      check(mincore(moved + i * kPage, kPage, &v) == 0, "destination facing the gap still mapped", i);
      continue;
    }
    check(i % 3 == 2 ? all_zero(moved + i * kPage, kPage) : stamped(moved, i, 21), "moved page", i);
  }
  for (size_t i = 0; i < n; i++) {
    if (i == gap) continue;
    mprotect(moved + i * kPage, kPage, PROT_READ | PROT_WRITE);
    stamp(moved, i, 22);
  }
  for (size_t i = 0; i < n; i++) {
    if (i != gap) check(stamped(moved, i, 22), "moved range is ordinary memory afterwards", i);
  }
  std::printf("move many mappings (%zu) ok\n", n);
  return 0;
}

int grow_and_move() {
  // A grow that has to move: the tail belongs to the region (one region, read and written here).
  const size_t n = 32;
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i++) stamp(m, i, 13);
  char* grown = static_cast<char*>(mremap(m, n * kPage, 4 * n * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, map_anon(4 * n)));
  check(grown != MAP_FAILED, "mremap grow and move");
  for (size_t i = 0; i < 4 * n; i++) {
    if (i < n) {
      check(stamped(grown, i, 13), "moved part keeps data", i);
    } else {
      check(all_zero(grown + i * kPage, kPage), "grown tail reads zero", i);
    }
  }
  for (size_t i = n; i < 4 * n; i++) stamp(grown, i, 14);
  for (size_t i = n; i < 4 * n; i++) check(stamped(grown, i, 14), "grown tail keeps writes", i);
  std::printf("grow and move ok\n");
  return 0;
}

int close_every_descriptor() {
  // The program owns its descriptors: it closes every one it did not open itself (the shim's
  // too), opens files that take the lowest numbers, and goes on using lazy memory and causing
  // events. Its files must hold exactly what it wrote, and its memory what it should.
  const size_t n = 64;
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i += 2) stamp(m, i, 15);
  syscall(SYS_close_range, 3u, ~0u, 0u);
  char path[] = "/tmp/uffdlazy-closefds-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  int fds[2];
  check(fd >= 0 && pipe(fds) == 0, "open a file and a pipe");
  const std::string text = "the program's own bytes\n";
  check(write(fd, text.data(), text.size()) == ssize_t(text.size()), "write the file");
  // Faults (old and new regions), drops, unmaps and moves, with the program's files open.
  for (size_t i = 0; i < n; i++) {
    bool ok = i % 2 == 0 ? stamped(m, i, 15) : all_zero(m + i * kPage, kPage);
    check(ok, "memory after close_range", i);
  }
  madvise(m, 8 * kPage, MADV_DONTNEED);
  for (size_t i = 0; i < 8; i++) check(all_zero(m + i * kPage, kPage), "dropped after close_range", i);
  char* fresh = map_anon(32);
  for (size_t i = 0; i < 32; i++) stamp(fresh, i, 16);
  for (size_t i = 0; i < 32; i++) check(stamped(fresh, i, 16), "new mapping after close_range", i);
  char* moved = static_cast<char*>(mremap(m, n * kPage, n * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, map_anon(n)));
  munmap(moved, n * kPage);
  // The pipe carries exactly what the program puts in, the file holds exactly what it wrote.
  const std::string msg = "through the pipe";
  check(write(fds[1], msg.data(), msg.size()) == ssize_t(msg.size()), "write the pipe");
  char back[64] = {};
  check(read(fds[0], back, sizeof back) == ssize_t(msg.size()) && msg == back, "pipe carries only the program's bytes");
  char file[256] = {};
  ssize_t got = pread(fd, file, sizeof file, 0);
  check(got == ssize_t(text.size()) && text == file, "file holds only the program's bytes");
  check(lseek(fd, 0, SEEK_CUR) == off_t(text.size()), "file offset is the program's");
  std::printf("close every descriptor: file=%zd bytes ok\n", got);
  return 0;
}

struct StackRun {
  size_t headroom;
  int result;
};

// Recurses until only `headroom` bytes of the thread's stack are left, then maps and touches.
__attribute__((noinline)) int deep(char* limit, size_t headroom) {
  volatile char pad[512];
  pad[0] = 1;
  if (reinterpret_cast<char*>(const_cast<char*>(pad)) - limit > long(headroom)) return deep(limit, headroom) + pad[0] - 1;
  char* m = map_anon(32);
  for (size_t i = 0; i < 32; i++) stamp(m, i, 17);
  int bad = 0;
  for (size_t i = 0; i < 32; i++) bad += !stamped(m, i, 17);
  munmap(m, 32 * kPage);
  return bad;
}

int small_stack() {
  // A thread on a 64 KiB stack with 6 KiB left maps and touches memory: it must not overflow
  // under the shim when it does not without it.
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  StackRun run{6 * 1024, -1};
  pthread_t t;
  pthread_create(&t, &attr, [](void* p) -> void* {
    auto* r = static_cast<StackRun*>(p);
    pthread_attr_t self;
    pthread_getattr_np(pthread_self(), &self);
    void* lo;
    size_t size;
    pthread_attr_getstack(&self, &lo, &size);
    pthread_attr_destroy(&self);
    r->result = deep(static_cast<char*>(lo), r->headroom);
    return nullptr;
  }, &run);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  check(run.result == 0, "small-stack thread's memory");
  std::printf("small stack ok\n");
  return 0;
}

std::atomic<long> g_handler_maps{0};
PacedSignals* g_pacer = nullptr;

void map_in_handler(int) {
  int saved = errno;
  char* m = static_cast<char*>(mmap(nullptr, 32 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m != MAP_FAILED) {
    m[5 * kPage] = 1;
    munmap(m, 32 * kPage);
    g_handler_maps.fetch_add(1);
  }
  if (g_pacer) g_pacer->handled();
  errno = saved;
}

int handler_maps_memory() {
  // A signal handler that maps memory, interrupting a thread that is itself mapping memory (and
  // thus perhaps inside the shim, holding its locks): no deadlock, every page right.
  // The signals are paced (see paced_signals.h), not timed: each lands somewhere in a round of the
  // main thread's mapping work, on any host.
  struct sigaction sa = {};
  sa.sa_handler = map_in_handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  PacedSignals pacer(SIGALRM);
  g_pacer = &pacer;
  long rounds = 0;
  for (int i = 0; i < 5000; i++) {
    char* m = static_cast<char*>(mmap(nullptr, 32 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (m == MAP_FAILED) continue;
    stamp(m, size_t(i) % 32, 18);
    check(stamped(m, size_t(i) % 32, 18), "page written while signals map memory");
    munmap(m, 32 * kPage);
    rounds++;
    pacer.progressed();
  }
  pacer.stop();
  check(g_handler_maps.load() > 0, "the handler ran");
  std::printf("handler maps memory: rounds=%ld ok\n", rounds);
  return 0;
}

int raw_syscalls() {
  // Memory mapped and moved through syscall(2), as some runtimes do it.
  const size_t n = 256;
  char* m = static_cast<char*>(reinterpret_cast<void*>(
      syscall(SYS_mmap, nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  check(m != MAP_FAILED, "syscall(SYS_mmap)");
  for (size_t i = 0; i < n; i++) check(all_zero(m + i * kPage, kPage), "fresh page reads zero", i);
  for (size_t i = 0; i < n; i += 2) stamp(m, i, 20);
  char* moved = static_cast<char*>(reinterpret_cast<void*>(
      syscall(SYS_mremap, m, n * kPage, 2 * n * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, map_anon(2 * n))));
  check(moved != MAP_FAILED, "syscall(SYS_mremap)");
  for (size_t i = 0; i < 2 * n; i++) {
    bool ok = i < n && i % 2 == 0 ? stamped(moved, i, 20) : all_zero(moved + i * kPage, kPage);
    check(ok, "page after syscall(SYS_mremap)", i);
  }
  check(syscall(SYS_munmap, moved, 2 * n * kPage) == 0, "syscall(SYS_munmap)");
  std::printf("raw syscalls ok\n");
  return 0;
}

std::atomic<int> g_sigchld{0};

int quiet_while_recorded() {
  // Recorded meanwhile (uffdlazy record --at after=...): the capture is a child of this process,
  // and it must be invisible: no SIGCHLD, no interrupted sleep, nothing for wait(2) to reap.
  const size_t n = 64;
  char* m = map_anon(n);
  for (size_t i = 0; i < n; i++) stamp(m, i, 19);
  struct sigaction sa = {};
  sa.sa_handler = [](int) { g_sigchld.fetch_add(1); };
  sigaction(SIGCHLD, &sa, nullptr);
  int interrupted = 0;
  timespec left = {0, 600 * 1000 * 1000};
  while (nanosleep(&left, &left) != 0) interrupted++;
  int status;
  pid_t reaped = waitpid(-1, &status, WNOHANG);
  std::printf("quiet: sigchld=%d interrupted=%d wait=%s\n", g_sigchld.load(), interrupted,
              reaped < 0 && errno == ECHILD ? "no children" : "a child");
  for (size_t i = 0; i < n; i++) check(stamped(m, i, 19), "memory after the capture", i);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: memory_rules touch N | dontneed | free | unmap | remap | threads N | "
                         "syscalls | fork | exec | move_across_mappings [noproc] | move_many_mappings N [noproc] | grow_and_move | close_every_descriptor | "
                         "small_stack | handler_maps_memory | quiet_while_recorded | raw_syscalls\n");
    return 2;
  }
  std::string s = argv[1];
  int rc = 2;
  if (s == "touch") rc = touch(argc > 2 ? size_t(std::atol(argv[2])) : 256);
  else if (s == "dontneed") rc = dontneed(MADV_DONTNEED);
  else if (s == "free") rc = dontneed(MADV_FREE);
  else if (s == "unmap") rc = unmap_and_fixed();
  else if (s == "remap") rc = remap();
  else if (s == "threads") rc = threads_same_pages(argc > 2 ? std::atoi(argv[2]) : 8);
  else if (s == "syscalls") rc = read_syscall();
  else if (s == "fork") rc = fork_child_sees_parent();
  else if (s == "exec") rc = exec_child();
  else if (s == "move_across_mappings") rc = move_across_mappings(argc > 2 && std::string(argv[2]) == "noproc");
  else if (s == "move_many_mappings")
    rc = move_many_mappings(argc > 2 ? size_t(std::atol(argv[2])) : 300, argc > 3 && std::string(argv[3]) == "noproc");
  else if (s == "grow_and_move") rc = grow_and_move();
  else if (s == "close_every_descriptor") rc = close_every_descriptor();
  else if (s == "small_stack") rc = small_stack();
  else if (s == "handler_maps_memory") rc = handler_maps_memory();
  else if (s == "quiet_while_recorded") rc = quiet_while_recorded();
  else if (s == "raw_syscalls") rc = raw_syscalls();
  else std::fprintf(stderr, "unknown scenario %s\n", argv[1]);
  if (rc == 0 && failures) {
    std::printf("failures=%d\n", failures);
    return 1;
  }
  return rc;
}
