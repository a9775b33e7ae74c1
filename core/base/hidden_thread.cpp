#include "core/base/hidden_thread.h"

#include <csignal>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "core/base/align.h"
#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kGuard = 64 * 1024;  // below the stack: an overflow faults instead of corrupting

}  // namespace

void name_this_thread(const char* name) { sys::call6(SYS_prctl, PR_SET_NAME, reinterpret_cast<long>(name)); }

bool HiddenThread::start(void* (*fn)(void*), void* arg, size_t stack_bytes) {
  const size_t bytes = align_up(stack_bytes, 64 * 1024) + kGuard;
  long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  char* base = reinterpret_cast<char*>(m);
  sys::call6(SYS_mprotect, m, kGuard, PROT_NONE);

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, base + kGuard, bytes - kGuard);
  sigset_t all, old;
  sigfillset(&all);
  // The thread inherits this mask.
  sys::sigprocmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, &attr, fn, arg);
  sys::sigprocmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    sys::munmap(base, bytes);
    return false;
  }
  handle_ = t;
  mapping_ = base;
  mapping_bytes_ = bytes;
  return true;
}

void HiddenThread::join() {
  if (!handle_) return;
  pthread_join(pthread_t(handle_), nullptr);
  handle_ = 0;
  if (mapping_) sys::munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
}

}  // namespace uffdlazy
