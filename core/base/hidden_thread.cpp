#include "core/base/hidden_thread.h"

#include <cerrno>
#include <csignal>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "core/base/align.h"
#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kGuard = 64 * 1024;  // below the stack: an overflow faults instead of corrupting

// The running hidden threads' ids, for is_hidden_thread().
constexpr size_t kMaxHidden = 16;
constinit long g_hidden_tids[kMaxHidden] = {};

constinit unsigned* g_libc_thread_count = nullptr;

void remember_tid(long tid, long old) {
  for (long& slot : g_hidden_tids) {
    long expected = old;
    if (__atomic_compare_exchange_n(&slot, &expected, tid, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return;
  }
}

}  // namespace

bool is_hidden_thread(long tid) {
  for (const long& slot : g_hidden_tids) {
    if (tid && __atomic_load_n(&slot, __ATOMIC_ACQUIRE) == tid) return true;
  }
  return false;
}

void hidden_thread_renumbered(long old_tid, long new_tid) {
  for (long& slot : g_hidden_tids) {
    long expected = old_tid;
    if (old_tid && __atomic_compare_exchange_n(&slot, &expected, new_tid, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      return;
    }
  }
}

void set_libc_thread_count(unsigned* count) { g_libc_thread_count = count; }

long libc_thread_count() {
  return g_libc_thread_count ? long(__atomic_load_n(g_libc_thread_count, __ATOMIC_ACQUIRE)) : -1;
}

void HiddenThread::forget() {
  handle_ = 0;
  started_tid_ = 0;
  const long tid = __atomic_exchange_n(&tid_, 0, __ATOMIC_ACQ_REL);
  if (tid) remember_tid(0, tid);
}

void* HiddenThread::trampoline(void* self) {
  HiddenThread* t = static_cast<HiddenThread*>(self);
  const long tid = sys::gettid();
  remember_tid(tid, 0);
  __atomic_store_n(&t->tid_, tid, __ATOMIC_RELEASE);
  if (t->prepare_) t->prepare_(t->arg_);
  __atomic_store_n(&t->running_, 1, __ATOMIC_RELEASE);
  sys::futex(&t->running_, FUTEX_WAKE_PRIVATE, 1 << 30);
  const bool counted_out = t->counted_out_;
  void* r = t->fn_(t->arg_);
  // The id may have changed meanwhile (a resumed process has new ids): forget the current one.
  const long now = sys::gettid();
  __atomic_store_n(&t->tid_, 0, __ATOMIC_RELEASE);
  remember_tid(0, now);
  // Out of glibc's count: returning into its thread epilogue would count this thread out twice
  // (and call exit() if that made the count zero). The kernel still clears the thread id for
  // pthread_join; nothing else of the epilogue concerns a thread that never allocated.
  if (counted_out) {
    for (;;) sys::call6(SYS_exit, 0);
  }
  return r;
}

void name_this_thread(const char* name) { sys::call6(SYS_prctl, PR_SET_NAME, reinterpret_cast<long>(name)); }

bool HiddenThread::start(void* (*fn)(void*), void* arg, size_t stack_bytes, void (*prepare)(void*)) {
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
  fn_ = fn;
  arg_ = arg;
  prepare_ = prepare;
  running_ = 0;
  counted_out_ = g_libc_thread_count != nullptr;
  pthread_t t;
  int rc = pthread_create(&t, &attr, trampoline, this);
  sys::sigprocmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    sys::munmap(base, bytes);
    return false;
  }
  // pthread_create counted the thread in; the thread it calls this from is a program thread
  // (counted, alive), so the count cannot reach zero here.
  if (counted_out_) __atomic_fetch_sub(g_libc_thread_count, 1u, __ATOMIC_ACQ_REL);
  handle_ = t;
  mapping_ = base;
  mapping_bytes_ = bytes;
  // Known as the shim's before start() returns: a checkpoint must never take it for a thread of
  // the program's.
  while (!__atomic_load_n(&running_, __ATOMIC_ACQUIRE)) sys::futex(&running_, FUTEX_WAIT_PRIVATE, 0);
  started_tid_ = __atomic_load_n(&tid_, __ATOMIC_ACQUIRE);
  return true;
}

void HiddenThread::join() {
  if (!handle_) return;
  pthread_join(pthread_t(handle_), nullptr);
  // pthread_join returns once the kernel has cleared the thread's id, a moment before the thread
  // leaves the thread group: a caller that needs the process single-threaded waits for that too
  // (tgkill finds no such thread). Bounded, in case the id was taken by a new thread meanwhile.
  const long pid = sys::getpid();
  for (int tries = 0; started_tid_ && tries < 100000; tries++) {
    if (sys::call6(SYS_tgkill, pid, started_tid_, 0) == -ESRCH) break;
    sys::call6(SYS_sched_yield);
  }
  started_tid_ = 0;
  handle_ = 0;
  if (mapping_) sys::munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
}

}  // namespace uffdlazy
