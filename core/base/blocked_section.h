// A lock held with every signal blocked.
//
// Program threads take the shim's locks (the region table's, the call-site table's) inside
// interposed calls. A signal handler that runs on the same thread while the lock is held and maps
// memory would try to take it again and deadlock; one that touches lazy memory would fault while
// holding what the monitor needs to answer. Blocking signals for the (short) hold rules out both.
//
// The thread's stack may itself be lazily paged (a thread stack or a coroutine stack from mmap):
// the pages the holder will use are faulted in before the lock is taken, never while holding it.
// Code that runs under such a lock must keep its stack use small (no large local arrays): the
// probe covers kHeldStackBytes below the caller's frame.
#pragma once

#include <csignal>

#include "core/base/raw_syscall.h"
#include "core/base/spin_lock.h"

namespace uffdlazy {

inline constexpr unsigned kHeldStackBytes = 1024;

// Touches the stack from here down to kHeldStackBytes below.
void prefault_stack();

class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    sys::sigprocmask(SIG_SETMASK, &all, &saved_);
  }
  ~SignalsBlocked() { sys::sigprocmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};

class BlockedSection {
 public:
  explicit BlockedSection(SpinLock& lock) : lock_(lock) {
    prefault_stack();
    lock_.lock();
  }
  ~BlockedSection() { lock_.unlock(); }
  BlockedSection(const BlockedSection&) = delete;
  BlockedSection& operator=(const BlockedSection&) = delete;

 private:
  SignalsBlocked blocked_;  // constructed first, destroyed last
  SpinLock& lock_;
};

}  // namespace uffdlazy
