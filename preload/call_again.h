// A blocking call that failed with EINTR because of the shim's signals alone (a checkpoint's stop
// signal, or its trigger) is made again, as if nothing had happened; one interrupted by the
// program's own signals returns EINTR as it would without the shim. Used by every interposer of a
// call the kernel does not restart (signal_interposers.cpp, io_interposers.cpp).
#pragma once

#include <cerrno>
#include <cstdint>
#include <ctime>

#include "core/base/shim_signals.h"
#include "core/checkpoint/thread_stop.h"

namespace uffdlazy::preload {

// Deliveries of the program's own signals to the calling thread (its handlers are wrapped while a
// checkpoint is armed: signal_interposers.cpp).
uint32_t program_signals_of_this_thread();

// Taken before the call; again() after it failed.
struct Watch {
  uint32_t shim = shim_signals_of_this_thread();
  uint32_t program = program_signals_of_this_thread();
  // The call failed with `err`: call again when that was EINTR from the shim's signals alone.
  bool again(int err) {
    if (err != EINTR || !ckpt::stop_signal_reserved()) return false;
    const bool only_shim = shim_signals_of_this_thread() != shim && program_signals_of_this_thread() == program;
    shim = shim_signals_of_this_thread();
    program = program_signals_of_this_thread();
    return only_shim;
  }
};

inline uint64_t now_ns(clockid_t clock = CLOCK_MONOTONIC) {
  timespec ts;
  clock_gettime(clock, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// A relative timeout as a deadline, and what is left of it (never negative).
struct Deadline {
  uint64_t end = 0;
  explicit Deadline(const timespec* t) {
    if (t) end = now_ns() + uint64_t(t->tv_sec) * 1000000000ull + uint64_t(t->tv_nsec);
  }
  explicit Deadline(int ms) {
    if (ms >= 0) end = now_ns() + uint64_t(ms) * 1000000ull;
  }
  timespec left() const {
    const uint64_t now = now_ns();
    const uint64_t ns = end > now ? end - now : 0;
    return timespec{time_t(ns / 1000000000ull), long(ns % 1000000000ull)};
  }
  int left_ms() const {
    const uint64_t now = now_ns();
    return end > now ? int((end - now + 999999) / 1000000) : 0;
  }
};

// Calls call() until it returns, other than by an interruption of the shim's; errno as it left it.
template <class Fn>
auto until_done(Fn&& call) {
  Watch w;
  for (;;) {
    auto r = call();
    if (r < 0 && w.again(errno)) continue;
    return r;
  }
}

// The same with a relative timeout (nullptr: none): the first call gets `timeout` itself, each
// call after an interruption what is left of it.
template <class Fn>
auto until_done_within(const timespec* timeout, Fn&& call) {
  const Deadline d(timeout);
  bool first = true;
  return until_done([&] {
    timespec left = timeout && !first ? d.left() : timespec{};
    const timespec* t = timeout ? (first ? timeout : &left) : nullptr;
    first = false;
    return call(t);
  });
}

}  // namespace uffdlazy::preload
