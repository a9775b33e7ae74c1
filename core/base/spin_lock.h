// A futex-backed mutex for the shim's own short critical sections (the region table).
//
// It never allocates and needs no initialisation beyond zero, so it works before constructors run
// and in forked children. Holders never touch registered memory or make a call that waits on the
// monitor (munmap, mremap, madvise, fork), so the monitor may take it without risking a deadlock.
#pragma once

#include <atomic>
#include <linux/futex.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

class SpinLock {
 public:
  void lock() {
    int expected = 0;
    if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire)) return;
    for (int spin = 0; spin < 100; spin++) {
      expected = 0;
      if (state_.load(std::memory_order_relaxed) == 0 &&
          state_.compare_exchange_weak(expected, 1, std::memory_order_acquire))
        return;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    // Contended: 2 means "someone may be sleeping", so unlock knows to wake.
    while (state_.exchange(2, std::memory_order_acquire) != 0) {
      sys::futex(&state_, FUTEX_WAIT_PRIVATE, 2);
    }
  }
  void unlock() {
    if (state_.exchange(0, std::memory_order_release) == 2) {
      sys::futex(&state_, FUTEX_WAKE_PRIVATE, 1);
    }
  }
  // After fork the child has one thread; whatever a vanished thread held is free again.
  void reset_after_fork() { state_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<int> state_{0};
};

class LockGuard {
 public:
  explicit LockGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace uffdlazy
