#include "core/pager/capture_trigger.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

struct SignalName {
  const char* name;
  int number;
};
constexpr SignalName kSignals[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},   {"INT", SIGINT},
                                   {"QUIT", SIGQUIT}, {"TERM", SIGTERM}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH},
                                   {"URG", SIGURG},   {"PWR", SIGPWR}};

constinit int g_wake_fd = -1;
constinit CaptureMoment g_moment;
using CaptureFn = void (*)();
constinit CaptureFn g_capture = nullptr;

void on_signal(int) {
  uint64_t one = 1;
  sys::write(g_wake_fd, &one, sizeof one);  // async-signal-safe, errno untouched
}

void* trigger_thread(void*) {
  if (g_moment.kind == CaptureMoment::kAfter) {
    timespec ts = {time_t(g_moment.after_ns / 1000000000ull), long(g_moment.after_ns % 1000000000ull)};
    while (sys::call6(SYS_nanosleep, reinterpret_cast<long>(&ts), reinterpret_cast<long>(&ts)) == -EINTR) {
    }
    g_capture();
    return nullptr;
  }
  for (;;) {
    uint64_t v;
    pollfd p = {g_wake_fd, POLLIN, 0};
    sys::call6(SYS_ppoll, reinterpret_cast<long>(&p), 1, 0, 0, 8);
    if (sys::read(g_wake_fd, &v, sizeof v) == sizeof v) g_capture();
  }
}

}  // namespace

bool parse_capture_moment(const char* spec, CaptureMoment* out, LineWriter* err) {
  *out = CaptureMoment{};
  if (!spec || !*spec || !strcmp(spec, "exit")) return true;
  if (!strncmp(spec, "signal=", 7)) {
    const char* n = spec + 7;
    if (!strncmp(n, "SIG", 3)) n += 3;
    for (const auto& s : kSignals) {
      if (!strcmp(n, s.name)) {
        out->kind = CaptureMoment::kSignal;
        out->signal = s.number;
        return true;
      }
    }
    int v = 0;
    const char* p = n;
    for (; *p >= '0' && *p <= '9' && v < 1000; p++) v = v * 10 + (*p - '0');
    if (p != n && !*p && v > 0 && v < SIGRTMAX && v != SIGKILL && v != SIGSTOP) {
      out->kind = CaptureMoment::kSignal;
      out->signal = v;
      return true;
    }
    err->str("unknown signal '").str(spec + 7).str("'; use USR1, USR2, HUP, INT, QUIT, TERM, ALRM, WINCH, URG, PWR or a number");
    return false;
  }
  if (!strncmp(spec, "after=", 6)) {
    // SECONDS with up to 9 decimals.
    const char* p = spec + 6;
    uint64_t whole = 0, frac = 0, scale = 1000000000ull;
    bool digits = false;
    for (; *p >= '0' && *p <= '9' && whole < 1000000; p++, digits = true) whole = whole * 10 + uint64_t(*p - '0');
    if (*p == '.') {
      for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
        if (scale > 1) {
          scale /= 10;
          frac += uint64_t(*p - '0') * scale;
        }
      }
    }
    if (digits && !*p && whole < 1000000) {
      out->kind = CaptureMoment::kAfter;
      out->after_ns = whole * 1000000000ull + frac;
      return true;
    }
  }
  err->str("'").str(spec).str("' is not a capture moment; use exit, signal=NAME or after=SECONDS");
  return false;
}

bool arm_capture(const CaptureMoment& m, void (*capture)()) {
  if (m.kind == CaptureMoment::kExit) return true;
  g_moment = m;
  g_capture = capture;
  long fd = sys::call6(SYS_eventfd2, 0, EFD_CLOEXEC);
  if (fd < 0) return false;
  g_wake_fd = int(fd);
  if (m.kind == CaptureMoment::kSignal) {
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(m.signal, &sa, nullptr) != 0) return false;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, &attr, trigger_thread, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  return rc == 0;
}

}  // namespace uffdlazy
