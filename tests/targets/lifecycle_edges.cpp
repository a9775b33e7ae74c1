// A target program for the end-to-end tests of the edges of a process's life: how it ends (main
// leaving by pthread_exit or by the exit system call, seccomp strict mode), calls the kernel
// allows only a single-threaded process (unshare, setns), children that share its memory and
// outlive it (clone(CLONE_VM), vfork), a raw clone3 with bad arguments, and the shim itself
// loaded and unloaded by dlopen/dlclose. Each scenario checks its pages itself and prints a
// deterministic account: the tests run it with and without the shim and expect the same output
// byte for byte and the same exit status.
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));
int failures = 0;

// Unbuffered output (write(2)): several scenarios end without exit(), which is what flushes stdio.
void say(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0) (void)!write(1, line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1);
}

void check(bool ok, const char* what, size_t page = SIZE_MAX) {
  if (ok) return;
  failures++;
  if (page == SIZE_MAX) {
    say("FAIL %s\n", what);
  } else {
    say("FAIL %s (page %zu)\n", what, page);
  }
}

// Every scenario's memory comes from here: at least 64 KiB, so the shim pages it lazily.
char* map_anon(size_t pages) {
  void* p = mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    say("mmap: %s\n", strerror(errno));
    _exit(2);
  }
  return static_cast<char*>(p);
}

uint64_t tag_for(size_t page, uint64_t salt) { return (page + 1) * 0x9E3779B97F4A7C15ull ^ salt; }

void stamp(char* base, size_t page, uint64_t salt) {
  const uint64_t t = tag_for(page, salt);
  memcpy(base + page * kPage, &t, 8);
  memcpy(base + page * kPage + kPage - 8, &t, 8);
}

bool stamped(const char* base, size_t page, uint64_t salt) {
  uint64_t a, b;
  const uint64_t t = tag_for(page, salt);
  memcpy(&a, base + page * kPage, 8);
  memcpy(&b, base + page * kPage + kPage - 8, 8);
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

// Pages [0, stamped_pages) stamped with `salt`, the rest never written: checks every page.
void expect_pattern(const char* m, size_t pages, size_t stamped_pages, uint64_t salt, const char* what) {
  for (size_t i = 0; i < pages; i++) {
    check(i < stamped_pages ? stamped(m, i, salt) : all_zero(m + i * kPage, kPage), what, i);
  }
}

const char* errno_name(int e) {
  switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EPERM: return "EPERM";
    case EUSERS: return "EUSERS";
    case E2BIG: return "E2BIG";
    case ENOSYS: return "ENOSYS";
    case EBADF: return "EBADF";
    default: return strerror(e);
  }
}

// The outcome of a call that returns 0 or -1 with errno.
const char* outcome(long r) { return r == 0 ? "0" : r == -1 ? errno_name(errno) : "?"; }

int pidfd_of(pid_t pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }

// Waits until the process behind `pidfd` has ended (all its threads).
void wait_until_gone(int pidfd) {
  pollfd p = {pidfd, POLLIN, 0};
  while (poll(&p, 1, -1) != 1) {
  }
}

// ---- How a process ends ---------------------------------------------------------------------

pthread_t g_main_thread;
char* g_mem = nullptr;
constexpr size_t kPages = 32;

void* stamp_upper_half(void*) {
  for (size_t i = kPages / 2; i < kPages; i++) stamp(g_mem, i, 12);
  return nullptr;
}

void* outlive_main(void*) {
  // Joining the main thread waits until it has left by pthread_exit.
  pthread_join(g_main_thread, nullptr);
  pthread_t t;
  pthread_create(&t, nullptr, stamp_upper_half, nullptr);
  pthread_join(t, nullptr);
  for (size_t i = 0; i < kPages / 2; i++) check(stamped(g_mem, i, 11), "page the main thread wrote", i);
  for (size_t i = kPages / 2; i < kPages; i++) check(stamped(g_mem, i, 12), "page a later thread wrote", i);
  std::printf("threads after main: checksum=%016llx failures=%d\n",
              (unsigned long long)checksum(g_mem, kPages * kPage), failures);
  return nullptr;  // the last thread: glibc calls exit(0), which runs the atexit handlers
}

int main_leaves_by_pthread_exit() {
  g_mem = map_anon(kPages);
  for (size_t i = 0; i < kPages / 2; i++) stamp(g_mem, i, 11);
  atexit([] { std::printf("atexit handler ran\n"); });
  g_main_thread = pthread_self();
  pthread_t t;
  pthread_create(&t, nullptr, outlive_main, nullptr);
  std::printf("main leaves by pthread_exit\n");  // buffered: only exit() flushes it
  pthread_exit(nullptr);
}

[[noreturn]] void exit_this_thread(int status) {
  syscall(SYS_exit, status);
  __builtin_unreachable();
}

int main_leaves_by_exit_syscall() {
  char* m = map_anon(kPages);
  for (size_t i = 0; i < kPages / 2; i++) stamp(m, i, 13);
  expect_pattern(m, kPages, kPages / 2, 13, "page before the exit system call");
  atexit([] { say("atexit handler ran\n"); });
  std::printf("buffered, never flushed\n");
  say("main leaves by the exit system call: checksum=%016llx failures=%d\n",
      (unsigned long long)checksum(m, kPages * kPage), failures);
  exit_this_thread(7);
}

void* last_thread(void*) {
  pthread_join(g_main_thread, nullptr);
  for (size_t i = 0; i < kPages / 2; i++) stamp(g_mem, i, 14);
  expect_pattern(g_mem, kPages, kPages / 2, 14, "page after the main thread left");
  say("last thread after main: checksum=%016llx failures=%d\n",
      (unsigned long long)checksum(g_mem, kPages * kPage), failures);
  // The process ends with the status of its last thread to leave by the exit system call.
  exit_this_thread(6);
}

int main_exit_syscall_then_last_thread() {
  g_mem = map_anon(kPages);
  g_main_thread = pthread_self();
  atexit([] { say("atexit handler ran\n"); });
  pthread_t t;
  pthread_create(&t, nullptr, last_thread, nullptr);
  exit_this_thread(5);
}

int seccomp_strict() {
  char* m = map_anon(kPages);
  for (size_t i = 0; i < 8; i++) stamp(m, i, 15);
  char line[128];
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0) {
    say("PR_SET_SECCOMP: %s\n", strerror(errno));
    return 2;
  }
  // From here only read, write, exit and sigreturn: the pages are still paged lazily.
  for (size_t i = 8; i < 16; i++) stamp(m, i, 15);
  int n = snprintf(line, sizeof line, "strict: checksum=%016llx zero=%d\n",
                   (unsigned long long)checksum(m, kPages * kPage), int(all_zero(m + 16 * kPage, 16 * kPage)));
  (void)!write(1, line, size_t(n));
  exit_this_thread(3);
}

// ---- Calls that need a single-threaded process ----------------------------------------------

struct NamedFlag {
  const char* name;
  int flag;
};
constexpr NamedFlag kUnshareFlags[] = {{"vm", CLONE_VM},         {"sighand", CLONE_SIGHAND}, {"thread", CLONE_THREAD},
                                       {"fs", CLONE_FS},         {"newns", CLONE_NEWNS},     {"user", CLONE_NEWUSER},
                                       {"files", CLONE_FILES},   {"sysvsem", CLONE_SYSVSEM}};

int flag_named(const char* name) {
  for (const auto& f : kUnshareFlags)
    if (!strcmp(f.name, name)) return f.flag;
  return -1;
}

// Memory before and after a call: pages written before keep their data, pages never written read
// zeros, and fresh memory mapped afterwards works.
struct Around {
  char* m = map_anon(kPages);
  uint64_t salt;
  explicit Around(uint64_t s) : salt(s) {
    for (size_t i = 0; i < kPages / 4; i++) stamp(m, i, salt);
  }
  void after(const char* what) {
    expect_pattern(m, kPages, kPages / 4, salt, what);
    for (size_t i = kPages / 4; i < kPages / 2; i++) stamp(m, i, salt);
    expect_pattern(m, kPages, kPages / 2, salt, what);
    char* fresh = map_anon(kPages);
    expect_pattern(fresh, kPages, 0, salt, "fresh page after the call");
    for (size_t i = 0; i < kPages; i++) stamp(fresh, i, salt + 1);
    expect_pattern(fresh, kPages, kPages, salt + 1, "fresh page after the call");
    munmap(fresh, kPages * kPage);
  }
};

// unshare(NAME[+NAME...]) for each argument, by the libc wrapper ("raw:" prefix: syscall(2)).
int unshare_each(int argc, char** argv) {
  for (int a = 0; a < argc; a++) {
    const bool raw = !strncmp(argv[a], "raw:", 4);
    std::string spec = raw ? argv[a] + 4 : argv[a];
    int flags = 0;
    for (size_t pos = 0; pos <= spec.size();) {
      size_t plus = spec.find('+', pos);
      if (plus == std::string::npos) plus = spec.size();
      const int f = flag_named(spec.substr(pos, plus - pos).c_str());
      if (f < 0) {
        say("unknown flag in %s\n", argv[a]);
        return 2;
      }
      flags |= f;
      pos = plus + 1;
    }
    Around mem(uint64_t(16 + a));
    errno = 0;
    const long r = raw ? syscall(SYS_unshare, flags) : unshare(flags);
    say("unshare(%s) = %s\n", argv[a], outcome(r));
    mem.after("page around unshare");
  }
  say("unshare done: failures=%d\n", failures);
  return 0;
}

// setns into this process's own mount or time namespace, or into a user namespace a child made.
int setns_each(int argc, char** argv) {
  for (int a = 0; a < argc; a++) {
    const std::string kind = argv[a];
    Around mem(uint64_t(32 + a));
    long r = -1;
    if (kind == "mnt" || kind == "time") {
      const int fd = open(kind == "mnt" ? "/proc/self/ns/mnt" : "/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
      errno = 0;
      r = setns(fd, kind == "mnt" ? CLONE_NEWNS : CLONE_NEWTIME);
      say("setns(%s) = %s\n", kind.c_str(), outcome(r));
      close(fd);
    } else if (kind == "user") {
      int ready[2], hold[2];
      if (pipe(ready) || pipe(hold)) return 2;
      const pid_t child = fork();
      if (child == 0) {
        close(ready[0]);
        close(hold[1]);
        char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
        (void)!write(ready[1], &c, 1);
        (void)!read(hold[0], &c, 1);  // until the parent is done
        _exit(0);
      }
      close(ready[1]);
      close(hold[0]);
      char c = 0;
      (void)!read(ready[0], &c, 1);
      say("child unshare(user) = %s\n", c == 'y' ? "0" : "failed");
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/ns/user", int(child));
      const int fd = open(path, O_RDONLY | O_CLOEXEC);
      errno = 0;
      r = setns(fd, CLONE_NEWUSER);
      say("setns(user) = %s\n", outcome(r));
      close(fd);
      close(hold[1]);
      close(ready[0]);
      int status = 0;
      waitpid(child, &status, 0);
      say("child status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
      say("unknown namespace %s\n", kind.c_str());
      return 2;
    }
    mem.after("page around setns");
  }
  say("setns done: failures=%d\n", failures);
  return 0;
}

// Recorded with "fill", restored with "check": the pages the recording wrote must come back after
// an unshare(CLONE_NEWUSER) made while most of them were still owed by the snapshot.
int restored_across_unshare(const char* mode) {
  constexpr size_t n = 64;
  char* m = map_anon(n);
  if (!strcmp(mode, "fill")) {
    for (size_t i = 0; i < n; i++) stamp(m, i, 40);
  } else {
    for (size_t i = 0; i < 4; i++) check(stamped(m, i, 40), "restored page before unshare", i);
    errno = 0;
    const long r = unshare(CLONE_NEWUSER);
    say("unshare(user) = %s\n", outcome(r));
    for (size_t i = 0; i < n; i++) check(stamped(m, i, 40), "restored page after unshare", i);
  }
  say("restored pages: checksum=%016llx failures=%d\n", (unsigned long long)checksum(m, n * kPage), failures);
  return 0;
}

// ---- clone3 with arguments the kernel refuses ------------------------------------------------

int clone3_bad_arguments() {
  struct Case {
    const char* name;
    void* args;
    size_t size;
  };
  char* none = static_cast<char*>(mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  // Two pages, the second unmapped: the flags can be read, the rest of the structure cannot.
  char* edge = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  munmap(edge + kPage, kPage);
  const Case cases[] = {
      {"unmapped", reinterpret_cast<void*>(8), sizeof(clone_args)},
      {"null", nullptr, sizeof(clone_args)},
      {"unmapped, 4 bytes", reinterpret_cast<void*>(8), 4},
      {"null, 4 bytes", nullptr, 4},
      {"PROT_NONE", none, sizeof(clone_args)},
      {"flags readable, rest unmapped", edge + kPage - 8, sizeof(clone_args)},
      {"too large", edge, 2 * kPage},
  };
  for (const Case& c : cases) {
    errno = 0;
    const long r = syscall(SYS_clone3, c.args, c.size);
    say("clone3(%s) = %ld %s\n", c.name, r, r == -1 ? errno_name(errno) : "");
  }
  // And one the kernel accepts: a child with a copy of the memory, like fork().
  clone_args ok = {};
  ok.exit_signal = SIGCHLD;
  const long pid = syscall(SYS_clone3, &ok, sizeof ok);
  if (pid == 0) _exit(9);
  int status = 0;
  waitpid(pid_t(pid), &status, 0);
  say("clone3(valid) child status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}

// ---- The shim loaded and unloaded by the program --------------------------------------------

int dlclose_shim(const char* path) {
  if (strcmp(path, "none") != 0) {
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      say("dlopen: %s\n", dlerror());
      return 2;
    }
    if (dlclose(h) != 0) say("dlclose: %s\n", dlerror());
  }
  // malloc, mmap and munmap after the unload go through libc's bodies, which the shim patched.
  for (int round = 0; round < 3; round++) {
    char* m = map_anon(kPages);
    for (size_t i = 0; i < kPages; i += 2) stamp(m, i, 50);
    for (size_t i = 0; i < kPages; i++) {
      check(i % 2 == 0 ? stamped(m, i, 50) : all_zero(m + i * kPage, kPage), "page after dlclose", i);
    }
    munmap(m, kPages * kPage);
    void* big = malloc(1 << 20);
    memset(big, 1, 1 << 20);
    free(big);
  }
  say("after dlclose: failures=%d\n", failures);
  return 0;
}

// ---- Children that share the memory and outlive their parent -------------------------------

struct Outliver {
  char* mem;
  int parent_pidfd;
};

// Runs in the child once the parent has ended: its pages written by the parent keep their data, the
// others (never touched by anyone) read zeros, and its own deep stack works.
void check_after_parent(const Outliver* o, const char* who) {
  wait_until_gone(o->parent_pidfd);
  char deep[96 * 1024];  // new stack pages, first touched now
  memset(deep, 7, sizeof deep);
  expect_pattern(o->mem, kPages, kPages / 4, 60, "page after the parent ended");
  for (size_t i = kPages / 4; i < kPages; i++) stamp(o->mem, i, 61);
  say("%s after its parent: checksum=%016llx deep=%d failures=%d\n", who,
      (unsigned long long)checksum(o->mem + kPages / 4 * kPage, kPages * 3 / 4 * kPage), deep[sizeof deep - 1],
      failures);
}

int outliving_clone_child(void* arg) {
  check_after_parent(static_cast<Outliver*>(arg), "clone(CLONE_VM) child");
  syscall(SYS_exit_group, 0);
  return 0;
}

int clone_vm_child_outlives(bool share_files) {
  static Outliver o;
  o.mem = map_anon(kPages);
  for (size_t i = 0; i < kPages / 4; i++) stamp(o.mem, i, 60);
  o.parent_pidfd = pidfd_of(getpid());
  constexpr size_t kStack = 256 * 1024;
  char* stack = map_anon(kStack / kPage);
  const int flags = CLONE_VM | (share_files ? CLONE_FILES : 0) | SIGCHLD;
  if (clone(outliving_clone_child, stack + kStack, flags, &o) < 0) {
    say("clone: %s\n", strerror(errno));
    return 2;
  }
  say("parent leaves\n");
  return 0;
}

int vfork_child_outlives_killed_parent() {
  static Outliver o;
  o.mem = map_anon(kPages);
  for (size_t i = 0; i < kPages / 4; i++) stamp(o.mem, i, 60);
  o.parent_pidfd = pidfd_of(getpid());
  const pid_t pid = vfork();
  if (pid == 0) {
    kill(getppid(), SIGKILL);
    check_after_parent(&o, "vfork child");
    _exit(0);
  }
  say("parent resumed after vfork: %d\n", int(pid));  // never: the child killed it
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: lifecycle_edges main_pthread_exit | main_exit_syscall | main_exit_syscall_then_thread | "
                 "seccomp_strict | unshare FLAG[+FLAG]... | setns mnt|time|user... | restored_unshare fill|check | "
                 "clone3_bad_args | dlclose_shim PATH|none | clone_vm_outlives [files] | vfork_outlives\n");
    return 2;
  }
  const std::string s = argv[1];
  int rc = 2;
  if (s == "main_pthread_exit") rc = main_leaves_by_pthread_exit();
  else if (s == "main_exit_syscall") rc = main_leaves_by_exit_syscall();
  else if (s == "main_exit_syscall_then_thread") rc = main_exit_syscall_then_last_thread();
  else if (s == "seccomp_strict") rc = seccomp_strict();
  else if (s == "unshare") rc = unshare_each(argc - 2, argv + 2);
  else if (s == "setns") rc = setns_each(argc - 2, argv + 2);
  else if (s == "restored_unshare" && argc > 2) rc = restored_across_unshare(argv[2]);
  else if (s == "clone3_bad_args") rc = clone3_bad_arguments();
  else if (s == "dlclose_shim" && argc > 2) rc = dlclose_shim(argv[2]);
  else if (s == "clone_vm_outlives") rc = clone_vm_child_outlives(argc > 2 && !strcmp(argv[2], "files"));
  else if (s == "vfork_outlives") rc = vfork_child_outlives_killed_parent();
  else std::fprintf(stderr, "unknown scenario %s\n", argv[1]);
  if (rc == 0 && failures) return 1;
  return rc;
}
