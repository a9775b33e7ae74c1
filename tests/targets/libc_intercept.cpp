// Programs whose memory comes from libc itself (malloc, the brk heap, thread stacks, posix_spawn,
// dlopen), for the e2e tests of interception inside libc. Each prints what it computed; the tests
// run them with and without the shim and compare.
//
//   libc_intercept brk            sbrk grows the heap, pages hold patterns, shrink and grow again
//   libc_intercept malloc MIB     malloc'd blocks (heap and mmap'd chunks) filled and summed
//   libc_intercept signal         a timer's handler mallocs and mmaps while the main thread maps
//   libc_intercept threads        threads that allocate and exit (joined and detached)
//   libc_intercept fork-thread    fork from a second thread; the child checks its memory
//   libc_intercept spawn          posix_spawn, system(), popen(), vfork+exec, fork+exec
//   libc_intercept dlopen LIB     a library with a 16 MiB .bss: filled through its functions
//   libc_intercept registered     (on stderr) whether the heap and a malloc'd block are registered
//   libc_intercept guard          a thread overflows its stack into glibc's guard page (SIGSEGV)
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
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

#include "tests/targets/paced_signals.h"

extern char** environ;

namespace {

uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 1099511628211ull; }

int fail(const char* what) {
  std::printf("FAIL %s (errno %d)\n", what, errno);
  return 1;
}

int run_brk() {
  const long page = sysconf(_SC_PAGESIZE);
  char* base = static_cast<char*>(sbrk(0));
  const long grow = 8 << 20;
  if (sbrk(grow) == reinterpret_cast<void*>(-1)) return fail("sbrk grow");
  // Fresh heap memory reads zeros; write a pattern into every page.
  for (long i = 0; i < grow; i += page) {
    if (base[i] != 0 || base[i + page - 1] != 0) return fail("fresh heap page is not zero");
    base[i] = char(i / page);
    base[i + page - 1] = char(i / page + 1);
  }
  // Shrink by half: the kept half keeps its content.
  if (sbrk(-grow / 2) == reinterpret_cast<void*>(-1)) return fail("sbrk shrink");
  if (static_cast<char*>(sbrk(0)) != base + grow / 2) return fail("break after shrink");
  for (long i = 0; i < grow / 2; i += page) {
    if (base[i] != char(i / page) || base[i + page - 1] != char(i / page + 1)) return fail("kept heap page changed");
  }
  // Grow again: the pages given back and taken anew read zeros, not their old content.
  if (sbrk(grow / 2) == reinterpret_cast<void*>(-1)) return fail("sbrk regrow");
  for (long i = grow / 2; i < grow; i += page) {
    if (base[i] != 0 || base[i + page - 1] != 0) return fail("regrown heap page is not zero");
  }
  // brk() itself: ENOMEM for an impossible break, and the break unchanged.
  void* before = sbrk(0);
  errno = 0;
  if (brk(reinterpret_cast<void*>(uintptr_t(-1) & ~uintptr_t(0xfff))) != -1 || errno != ENOMEM) return fail("brk to the top");
  if (sbrk(0) != before) return fail("break moved by a failed brk");
  if (brk(base) != 0 || sbrk(0) != base) return fail("brk back to the start");
  std::printf("brk ok %ld pages\n", grow / page);
  return 0;
}

int run_malloc(long mib) {
  uint64_t h = 1469598103934665603ull;
  const int blocks = 64;
  char* p[blocks];
  for (int b = 0; b < blocks; b++) {
    // Small blocks come from the brk heap, large ones are chunks malloc maps by itself.
    const size_t n = (b % 4 == 0) ? size_t(mib << 20) / 16 : 3000 + size_t(b) * 977;
    p[b] = static_cast<char*>(malloc(n));
    if (!p[b]) return fail("malloc");
    for (size_t i = 0; i < n; i += 512) p[b][i] = char(b + i / 512);
    for (size_t i = 0; i < n; i += 512) h = mix(h, uint64_t(uint8_t(p[b][i])));
    char* z = static_cast<char*>(calloc(1, n));
    for (size_t i = 0; i < n; i += 256) {
      if (z[i]) return fail("calloc returned non-zero memory");
    }
    free(z);
  }
  for (int b = 0; b < blocks; b += 2) free(p[b]);
  for (int b = 1; b < blocks; b += 2) {
    p[b] = static_cast<char*>(realloc(p[b], size_t(mib << 20) / 8));  // grows, mremap for mapped chunks
    h = mix(h, uint64_t(uint8_t(p[b][0])));
    free(p[b]);
  }

  std::printf("malloc %016llx\n", (unsigned long long)h);
  return 0;
}

std::atomic<long> g_handled{0};
PacedSignals* g_pacer = nullptr;

void on_alarm(int) {
  const int saved = errno;
  void* m = mmap(nullptr, 256 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m != MAP_FAILED) {
    static_cast<char*>(m)[4096] = 7;
    if (static_cast<char*>(m)[4096] != 7) _exit(3);
    munmap(m, 256 << 10);
  }
  g_handled.fetch_add(1);
  if (g_pacer) g_pacer->handled();
  errno = saved;
}

int run_signal() {
  struct sigaction sa = {};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, nullptr);
  // The main thread maps through libc (the patched body) all the while: most signals land inside
  // it. Paced, not timed (see paced_signals.h): the program advances on any host.
  PacedSignals pacer(SIGALRM);
  g_pacer = &pacer;
  uint64_t h = 0;
  for (int i = 0; i < 20000 || g_handled.load() < 100; i++) {
    char* m = static_cast<char*>(mmap(nullptr, 128 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (m == MAP_FAILED) return fail("mmap");
    m[i % (128 << 10)] = char(i);
    // Only the first 20000 count: the loop runs on until 100 signals were handled, a number of
    // rounds that depends on the host's speed (the output must not).
    if (i < 20000) h += uint8_t(m[i % (128 << 10)]);
    if (munmap(m, 128 << 10) != 0) return fail("munmap");
    if (i > 2000000) return fail("no signal arrived");
    pacer.progressed();
  }
  pacer.stop();
  std::printf("signal ok %llu\n", (unsigned long long)h);
  return 0;
}

void* worker(void* arg) {
  const long n = reinterpret_cast<long>(arg);
  char big[64 << 10];  // the thread's own stack, lazily paged
  memset(big, int(n), sizeof big);
  char* p = static_cast<char*>(malloc(size_t(1) << 20));
  memset(p, int(n + big[100]), 1 << 20);
  long s = 0;
  for (int i = 0; i < (1 << 20); i += 4096) s += p[i];
  free(p);
  return reinterpret_cast<void*>(s);
}

int run_threads() {
  long total = 0;
  for (int round = 0; round < 20; round++) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], nullptr, worker, reinterpret_cast<void*>(round * 4 + i));
    for (int i = 0; i < 4; i++) {
      void* r;
      pthread_join(t[i], &r);
      total += reinterpret_cast<long>(r);
    }
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t d;
    pthread_create(&d, &a, worker, reinterpret_cast<void*>(long(round)));
    pthread_attr_destroy(&a);
  }
  usleep(100000);  // let the detached ones exit before the process does (not a synchronisation: any outcome is fine)
  std::printf("threads %ld\n", total);
  return 0;
}

void* forker(void* arg) {
  char* shared_state = static_cast<char*>(arg);
  pid_t pid = fork();
  if (pid == 0) {
    // The child has the parent's memory, and can allocate and free.
    long s = 0;
    for (int i = 0; i < (4 << 20); i += 4096) s += shared_state[i];
    char* p = static_cast<char*>(malloc(8 << 20));
    memset(p, 3, 8 << 20);
    for (int i = 0; i < (8 << 20); i += 4096) s += p[i];
    free(p);
    _exit(s == (4 << 20) / 4096 * 5 + (8 << 20) / 4096 * 3 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return reinterpret_cast<void*>(long(WIFEXITED(status) ? WEXITSTATUS(status) : 100));
}

int run_fork_thread() {
  char* state = static_cast<char*>(malloc(4 << 20));
  memset(state, 5, 4 << 20);
  pthread_t t;
  pthread_create(&t, nullptr, forker, state);
  void* r;
  pthread_join(t, &r);
  if (reinterpret_cast<long>(r) != 0) return fail("forked child saw wrong memory");
  std::printf("fork-thread ok\n");
  return 0;
}

int run_spawn() {
  std::fflush(stdout);
  pid_t pid;
  char* argv1[] = {const_cast<char*>("/bin/echo"), const_cast<char*>("spawned"), nullptr};
  if (posix_spawn(&pid, "/bin/echo", nullptr, nullptr, argv1, environ) != 0) return fail("posix_spawn");
  int status;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status)) return fail("spawned child");
  if (system("echo system") != 0) return fail("system");
  FILE* f = popen("echo popen", "r");
  char line[64] = {};
  if (!f || !fgets(line, sizeof line, f) || pclose(f) != 0) return fail("popen");
  std::printf("read %s", line);
  std::fflush(stdout);
  pid = vfork();
  if (pid == 0) {
    execl("/bin/echo", "echo", "vforked", static_cast<char*>(nullptr));
    _exit(127);
  }
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status)) return fail("vfork child");
  pid = fork();
  if (pid == 0) {
    execl("/bin/echo", "echo", "forked", static_cast<char*>(nullptr));
    _exit(127);
  }
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status)) return fail("fork+exec child");
  std::printf("spawn ok\n");
  return 0;
}

int run_dlopen(const char* lib) {
  void* h = dlopen(lib, RTLD_NOW);
  if (!h) {
    std::printf("FAIL dlopen %s\n", dlerror());
    return 1;
  }
  auto fill = reinterpret_cast<unsigned long (*)(unsigned)>(dlsym(h, "big_bss_fill"));
  auto where = reinterpret_cast<void* (*)()>(dlsym(h, "big_bss_address"));
  if (!fill || !where) return fail("dlsym");
  // Untouched .bss reads zeros; then it holds what was written.
  unsigned long first = fill(7);
  unsigned long second = fill(9);
  std::printf("dlopen %lu %lu\n", first, second);
  // For the tests: whether the .bss lies in a mapping registered with a userfaultfd (not stdout:
  // that must be the same with and without the shim).
  char cmd[128];
  std::snprintf(cmd, sizeof cmd, "%p", where());
  std::fprintf(stderr, "bss at %s\n", cmd);
  return 0;
}

// Prints (stderr) "registered ADDRESS yes|no" from /proc/self/smaps: whether it lies in a mapping
// with VmFlags um.
void report_registered(const char* label, const void* p) {
  FILE* f = fopen("/proc/self/smaps", "r");
  char line[512];
  bool inside = false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  while (f && fgets(line, sizeof line, f)) {
    unsigned long s, e;
    if (std::sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < line + 17) {
      inside = a >= s && a < e;
    } else if (inside && !strncmp(line, "VmFlags:", 8)) {
      std::fprintf(stderr, "registered %s %s\n", label, strstr(line, " um") ? "yes" : "no");
      break;
    }
  }
  if (f) fclose(f);
}

// Recurses until the thread's stack runs into its guard page.
__attribute__((noinline)) long deeper(volatile char* prev, long depth) {
  volatile char frame[1024];
  frame[0] = char(depth);
  frame[1023] = prev ? prev[0] : 0;
  return depth > (1L << 30) ? 0 : deeper(frame, depth + 1) + frame[1023];
}

void* overflow(void*) {
  std::printf("overflowing\n");
  std::fflush(stdout);
  return reinterpret_cast<void*>(deeper(nullptr, 0));
}

// A thread with a 256 KiB stack (glibc maps it with MAP_STACK and a guard page) overflows it: the
// process dies of SIGSEGV, as without the shim, rather than running into other memory.
int run_guard() {
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 256 << 10);
  pthread_t t;
  pthread_create(&t, &a, overflow, nullptr);
  pthread_join(t, nullptr);
  std::printf("survived the overflow\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string cmd = argv[1];
  if (cmd == "brk") return run_brk();
  if (cmd == "malloc") return run_malloc(argc > 2 ? atol(argv[2]) : 64);
  if (cmd == "signal") return run_signal();
  if (cmd == "threads") return run_threads();
  if (cmd == "fork-thread") return run_fork_thread();
  if (cmd == "spawn") return run_spawn();
  if (cmd == "guard") return run_guard();
  if (cmd == "dlopen" && argc > 2) {
    int r = run_dlopen(argv[2]);
    void* h = dlopen(argv[2], RTLD_NOW | RTLD_NOLOAD);
    auto where = h ? reinterpret_cast<void* (*)()>(dlsym(h, "big_bss_address")) : nullptr;
    if (where) report_registered("bss", static_cast<char*>(where()) + (8 << 20));
    return r;
  }
  if (cmd == "registered") {
    char* big = static_cast<char*>(malloc(32 << 20));
    memset(big, 1, 32 << 20);  // the bulk of the process's anonymous memory
    void* small = malloc(200 << 10);
    void* keep[64];
    for (int i = 0; i < 64; i++) keep[i] = malloc(64 << 10);  // grows the brk heap past any minimum size
    __asm__ volatile("" : : "r"(keep) : "memory");
    report_registered("malloc-mapped", big);
    report_registered("heap", small);
    std::printf("registered %d\n", big[0]);
    return 0;
  }
  return 2;
}
