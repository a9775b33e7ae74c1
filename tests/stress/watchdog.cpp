#include "tests/stress/watchdog.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace stress {

namespace {

const Options* g_opt = nullptr;
MainProgress* g_main = nullptr;
constexpr int kMaxThreadsShown = 40;

void say(const char* s, size_t n) {
  ssize_t ignored = write(2, s, n);
  (void)ignored;
}

void sayf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void sayf(const char* fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0) say(line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1);
}

// Reads a small /proc file into buf (NUL-terminated); empty on failure.
void read_proc(const char* path, char* buf, size_t size) {
  buf[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
}

void show_kernel_side(int tid, const char* indent) {
  char path[64], buf[2048];
  // State (R running, S sleeping, D uninterruptible) and CPU time: a spinning thread shows R and
  // a growing time, a waiting one S and its wait channel.
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  read_proc(path, buf, sizeof buf);
  const char* after_name = strrchr(buf, ')');
  if (after_name) {
    char state = 0;
    unsigned long long utime = 0, stime = 0;
    // fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    if (sscanf(after_name + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state, &utime, &stime) == 3) {
      long hz = sysconf(_SC_CLK_TCK);
      sayf("%sstate %c, cpu %.2f s user + %.2f s system\n", indent, state, double(utime) / double(hz),
           double(stime) / double(hz));
    }
  }
  snprintf(path, sizeof path, "/proc/self/task/%d/wchan", tid);
  read_proc(path, buf, sizeof buf);
  sayf("%swchan: %s\n", indent, buf[0] ? buf : "?");
  snprintf(path, sizeof path, "/proc/self/task/%d/stack", tid);
  read_proc(path, buf, sizeof buf);
  int lines = 0;
  for (char* line = buf; *line && lines < 6; lines++) {
    char* end = strchr(line, '\n');
    if (end) *end = 0;
    sayf("%s  %s\n", indent, line);
    if (!end) break;
    line = end + 1;
  }
}

// Every thread whose name starts with "uffdlazy" (the shim's monitor), by raw getdents: no malloc.
void show_shim_threads() {
  int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  char buf[8192];
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      char path[320], comm[64];
      snprintf(path, sizeof path, "/proc/self/task/%s/comm", d->d_name);
      read_proc(path, comm, sizeof comm);
      if (strncmp(comm, "uffdlazy", 8) != 0) continue;
      char* nl = strchr(comm, '\n');
      if (nl) *nl = 0;
      sayf("  shim thread %s (tid %s):\n", comm, d->d_name);
      show_kernel_side(atoi(d->d_name), "    ");
    }
  }
  close(dir);
}

[[noreturn]] void hang(const char* why, uint64_t now) {
  sayf("mapping_stress: WATCHDOG: %s (seed=%llu threads=%d steps=%d); what each stalled thread was doing:\n", why,
       (unsigned long long)g_opt->seed, g_opt->threads, g_opt->steps);
  sayf("  main thread (tid %d): %s for %.1f s\n", g_main->tid.load(), g_main->phase.load(),
       double(now - g_main->since_ns.load()) / 1e9);
  if (strcmp(g_main->phase.load(), "running") != 0) show_kernel_side(g_main->tid.load(), "    ");
  int running = 0, done = 0, waiting = 0, shown = 0;
  for (int i = 0; i < g_worker_count; i++) {
    Worker& w = g_workers[i];
    int st = w.state.load();
    if (st == int(RunState::kDone)) {
      done++;
      continue;
    }
    if (st == int(RunState::kNotStarted)) {
      waiting++;
      continue;
    }
    running++;
    double idle = double(now - w.progress_ns.load()) / 1e9;
    if (idle * 1000 < g_opt->watchdog_seconds * 1000.0 / 2 || shown >= kMaxThreadsShown) continue;
    shown++;
    int op = w.op.load();
    sayf("  thread %d (tid %d): step %d of %d, op %s, %s at %#lx, no progress for %.1f s", i, w.tid.load(),
         w.step.load(), g_opt->steps, op >= 0 ? op_info(Op(op)).name : "-", w.doing.load(),
         (unsigned long)w.addr.load(), idle);
    if (w.child_pid.load() > 0) sayf(", waiting for child %d", w.child_pid.load());
    say("\n", 1);
    show_kernel_side(w.tid.load(), "    ");
  }
  sayf("  threads: %d running (%d shown), %d done, %d not started\n", running, shown, done, waiting);
  show_shim_threads();
  for (int i = 0; i < g_worker_count; i++) {
    int child = g_workers[i].child_pid.load();
    if (child > 0) kill(child, SIGKILL);
  }
  if (g_opt->watchdog_core) {
    say("mapping_stress: aborting for a core dump (hang)\n", 49);
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  sayf("mapping_stress: exiting with status %d (hang)\n", kHangStatus);
  _exit(kHangStatus);
}

void* watch(void*) {
  const uint64_t limit = uint64_t(g_opt->watchdog_seconds) * 1000000000ull;
  for (;;) {
    timespec nap = {0, 250 * 1000 * 1000};
    nanosleep(&nap, nullptr);
    uint64_t now = now_ns();
    const char* phase = g_main->phase.load();
    uint64_t since = g_main->since_ns.load();
    if (strcmp(phase, "running") != 0 && now - since > limit) {
      char why[160];
      snprintf(why, sizeof why, "the main thread has been in phase '%s' for %d s", phase, g_opt->watchdog_seconds);
      hang(why, now);
    }
    for (int i = 0; i < g_worker_count; i++) {
      Worker& w = g_workers[i];
      if (w.state.load() != int(RunState::kRunning)) continue;
      uint64_t last = w.progress_ns.load();
      if (now > last && now - last > limit) {
        char why[160];
        snprintf(why, sizeof why, "thread %d made no progress for %d s", i, g_opt->watchdog_seconds);
        hang(why, now);
      }
    }
  }
  return nullptr;
}

}  // namespace

bool start_watchdog(const Options& opt, MainProgress* main_progress) {
  g_opt = &opt;
  g_main = main_progress;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, &attr, watch, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  return rc == 0;
}

}  // namespace stress
