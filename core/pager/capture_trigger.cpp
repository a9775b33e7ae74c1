#include "core/pager/capture_trigger.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <atomic>
#include <linux/futex.h>

#include "core/base/hidden_thread.h"
#include "core/base/raw_syscall.h"
#include "core/base/shim_signals.h"

// glibc's own sigaction (public ABI since 2.0): the shim's handlers are installed past its
// interposer (preload/signal_interposers.cpp), which guards the program's.
extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace uffdlazy {

namespace {

struct SignalName {
  const char* name;
  int number;
};
constexpr SignalName kSignals[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},   {"INT", SIGINT},
                                   {"QUIT", SIGQUIT}, {"TERM", SIGTERM}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH},
                                   {"URG", SIGURG},   {"PWR", SIGPWR}};

// Signals received (low 31 bits); the handler bumps it and wakes the trigger thread. A futex
// rather than a descriptor: the program may close every descriptor and reuse the numbers, and the
// handler must never write into one of its files. kReleaseAsked: the program takes the signal.
constexpr uint32_t kReleaseAsked = 1u << 31;
constinit std::atomic<uint32_t> g_signals{0};
constinit std::atomic<uint32_t> g_released{0};  // futex word: the trigger thread blocks the signal
constinit CaptureMoment g_moment;
using CaptureFn = void (*)();
constinit CaptureFn g_capture = nullptr;
constinit HiddenThread g_thread;
constinit bool g_keep = false;
constinit struct sigaction g_view = {};

void on_signal(int) {
  // Async-signal-safe, errno untouched (raw system calls).
  count_shim_signal();
  g_signals.fetch_add(1, std::memory_order_release);
  sys::futex(&g_signals, FUTEX_WAKE_PRIVATE, 1);
}

// The trigger thread's mask for the kept signal (every other signal stays blocked).
void take_signal_here(bool take) {
  const uint64_t set = uint64_t(1) << (g_moment.signal - 1);
  sys::sigprocmask(take ? SIG_UNBLOCK : SIG_BLOCK, &set, nullptr);
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
    if (g_keep) {
      // Again at each turn: a resumed thread starts with every signal blocked.
      const bool released = now & kReleaseAsked;
      take_signal_here(!released);
      if (released && !g_released.load(std::memory_order_acquire)) {
        g_released.store(1, std::memory_order_release);
        sys::futex(&g_released, FUTEX_WAKE_PRIVATE, 1 << 30);
      }
    }
    if ((now & ~kReleaseAsked) != seen) {
      seen = now & ~kReleaseAsked;
      g_capture();
      continue;
    }
    sys::futex(&g_signals, FUTEX_WAIT_PRIVATE, int(now));
  }
}

}  // namespace

void append_signal_name(LineWriter* w, int sig) {
  for (const auto& s : kSignals) {
    if (s.number == sig) {
      w->str("SIG").str(s.name);
      return;
    }
  }
  w->str("signal ").i64(sig);
}

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

bool arm_capture(const CaptureMoment& m, void (*capture)(), bool keep_signal) {
  if (m.kind == CaptureMoment::kExit) return true;
  g_moment = m;
  g_capture = capture;
  if (m.kind == CaptureMoment::kSignal) {
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (__sigaction(m.signal, &sa, &g_view) != 0) return false;
    // What the program inherited (SIG_IGN survives exec) stays what it sees.
    if (g_view.sa_handler != SIG_IGN) g_view.sa_handler = SIG_DFL;
    g_keep = keep_signal;
  }
  return g_thread.start(trigger_thread, nullptr, 256 * 1024);
}

int capture_signal() {
  return g_keep && !(g_signals.load(std::memory_order_acquire) & kReleaseAsked) ? g_moment.signal : 0;
}

struct sigaction* capture_signal_view() { return &g_view; }

void release_capture_signal() {
  if (!g_keep) return;
  g_signals.fetch_or(kReleaseAsked, std::memory_order_acq_rel);
  sys::futex(&g_signals, FUTEX_WAKE_PRIVATE, 1 << 30);
  while (!g_released.load(std::memory_order_acquire)) sys::futex(&g_released, FUTEX_WAIT_PRIVATE, 0);
}

bool capture_forked() {
  if (!g_keep) return false;
  const bool released = g_signals.load(std::memory_order_acquire) & kReleaseAsked;
  g_keep = false;
  g_thread.forget();
  if (!released) __sigaction(g_moment.signal, &g_view, nullptr);
  return true;
}

}  // namespace uffdlazy
