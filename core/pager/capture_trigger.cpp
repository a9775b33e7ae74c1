#include "core/pager/capture_trigger.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <atomic>
#include <linux/futex.h>

#include "core/base/hidden_thread.h"
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

// Signals received; the handler bumps it and wakes the trigger thread. A futex rather than a
// descriptor: the program may close every descriptor and reuse the numbers, and the handler must
// never write into one of its files.
constinit std::atomic<uint32_t> g_signals{0};
constinit CaptureMoment g_moment;
using CaptureFn = void (*)();
constinit CaptureFn g_capture = nullptr;
constinit HiddenThread g_thread;

void on_signal(int) {
  // Async-signal-safe, errno untouched (raw system call).
  g_signals.fetch_add(1, std::memory_order_release);
  sys::futex(&g_signals, FUTEX_WAKE_PRIVATE, 1);
}

void* trigger_thread(void*) {
  name_this_thread("uffdlazy-capture");
  if (g_moment.kind == CaptureMoment::kAfter) {
    timespec ts = {time_t(g_moment.after_ns / 1000000000ull), long(g_moment.after_ns % 1000000000ull)};
    while (sys::call6(SYS_nanosleep, reinterpret_cast<long>(&ts), reinterpret_cast<long>(&ts)) == -EINTR) {
    }
    g_capture();
    return nullptr;
  }
  uint32_t seen = 0;
  for (;;) {
    const uint32_t now = g_signals.load(std::memory_order_acquire);
    if (now != seen) {
      seen = now;
      g_capture();
      continue;
    }
    sys::futex(&g_signals, FUTEX_WAIT_PRIVATE, int(now));
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
  if (m.kind == CaptureMoment::kSignal) {
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(m.signal, &sa, nullptr) != 0) return false;
  }
  return g_thread.start(trigger_thread, nullptr, 256 * 1024);
}

}  // namespace uffdlazy
