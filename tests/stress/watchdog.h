// Turns a hang into a report: a thread that reads only the program's heap (never memory the shim
// may page) notices a worker, or the main thread, making no progress for too long, prints what
// every stalled thread was doing (with its kernel stack and the shim's monitor thread's), kills
// the children it knows of and exits with kHangStatus.
#pragma once

#include <atomic>
#include <cstdint>

#include "tests/stress/worker.h"

namespace stress {

inline constexpr int kHangStatus = 124;

struct MainProgress {
  std::atomic<const char*> phase{"starting"};
  std::atomic<uint64_t> since_ns{0};
  std::atomic<int> tid{0};
  void enter(const char* p) {
    since_ns.store(now_ns());
    phase.store(p);
  }
};

// Starts the watchdog thread (detached; it lives until the process exits). False if it could not.
bool start_watchdog(const Options& opt, MainProgress* main_progress);

}  // namespace stress
