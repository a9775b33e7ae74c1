// Ways of making a child that copies the program's memory without fork()'s pthread_atfork
// handlers: _Fork(), clone() without CLONE_VM, and the raw clone and clone3 system calls made
// through syscall(2) (which also tells the pager of mappings made through it). Each gets what fork() gets from the handlers in shim_lifecycle.cpp: before
// the copy the pager puts every page a snapshot still owes in place (the child's copy of a
// registered region is not registered). vfork, posix_spawn and system share the parent's memory
// (CLONE_VM): nothing to do, the parent's monitor serves the child.
#include <cerrno>
#include <cstdarg>
#include <dlfcn.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/process_settings.h"
#include "core/pager/lazy_pager.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using ForkFn = pid_t (*)();
using CloneFn = int (*)(int (*)(void*), void*, int, void*, ...);

// Resolved in the constructor (process_interposers_init); dlsym is not for a fork path that may
// run in a signal handler. A call before that (another library's constructor) resolves it then.
ForkFn g_real_fork = nullptr;
CloneFn g_real_clone = nullptr;

template <class Fn>
Fn next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

namespace uffdlazy::preload {

void process_interposers_init() {
  g_real_fork = next<ForkFn>("_Fork");
  g_real_clone = next<CloneFn>("clone");
}

// io_interposers.cpp: io_getevents and io_pgetevents, made again after an interruption of the
// shim's; the kernel's raw result.
long io_getevents_syscall(long number, const long* args);

}  // namespace uffdlazy::preload

UFFDLAZY_EXPORT pid_t _Fork() {
  if (!g_real_fork) g_real_fork = next<ForkFn>("_Fork");
  uffdlazy::pager::before_fork();
  pid_t pid = g_real_fork();
  // The child of _Fork may only make async-signal-safe calls (no atfork handler reset glibc's
  // locks), so it starts no monitor: its memory is complete, the kernel pages it from here on,
  // and the shim stays out of its way (it acts only in the process that started it).
  if (pid != 0) uffdlazy::pager::after_fork_parent();
  return pid;
}

UFFDLAZY_EXPORT int clone(int (*fn)(void*), void* stack, int flags, void* arg, ...) {
  // The optional arguments are read whatever the flags say, as glibc's own clone does.
  va_list ap;
  va_start(ap, arg);
  void* parent_tid = va_arg(ap, void*);
  void* tls = va_arg(ap, void*);
  void* child_tid = va_arg(ap, void*);
  va_end(ap);
  if (!g_real_clone) g_real_clone = next<CloneFn>("clone");
  // The child runs fn and never returns here. It starts with every page in place and no monitor
  // of its own: its memory is paged by the kernel, which is right for a copy with nothing owed.
  const bool copies_memory = !(flags & CLONE_VM);
  if (copies_memory) uffdlazy::pager::before_fork();
  int r = g_real_clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
  if (copies_memory) uffdlazy::pager::after_fork_parent();
  return r;
}

namespace {

// A raw system call, with the pre-fork fill when it is a clone that copies the memory.
long clone_or_call(long number, const long* a) {
  bool copies_memory = false;
  if (number == SYS_clone) {
    copies_memory = !(uint64_t(a[0]) & CLONE_VM);
  } else if (number == SYS_clone3 && a[0] && size_t(a[1]) >= sizeof(uint64_t)) {
    copies_memory = !(reinterpret_cast<const clone_args*>(a[0])->flags & CLONE_VM);
  }
  if (copies_memory) uffdlazy::pager::before_fork();
  const long r = uffdlazy::sys::call6(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (copies_memory && r != 0) uffdlazy::pager::after_fork_parent();
  return r;
}

}  // namespace

// syscall(2) itself, for SYS_clone and SYS_clone3 (a program that makes its children that way,
// or a runtime that does), for SYS_mmap and SYS_mremap (a program that maps memory that way:
// the pager learns of it as of any other mapping), for SYS_io_getevents and io_pgetevents
// (libc has no wrapper for them: a checkpoint must not cut them short, io_interposers.cpp), and
// for SYS_rseq and SYS_membarrier (a registration a checkpoint must know of:
// core/checkpoint/process_settings.h). Every other number goes straight to the
// kernel, as glibc's does it: six arguments taken whatever the call needs, errno set only on
// failure.
UFFDLAZY_EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& v : a) v = va_arg(ap, long);
  va_end(ap);
  long r;
  if (number == SYS_mmap) {
    r = uffdlazy::sys::call6(number, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (!uffdlazy::sys::failed(r)) {
      uffdlazy::pager::mapped(reinterpret_cast<void*>(r), size_t(a[1]), int(a[2]), int(a[3]), int(a[4]),
                              __builtin_return_address(0));
    }
  } else if (number == SYS_io_getevents || number == SYS_io_pgetevents) {
    r = uffdlazy::preload::io_getevents_syscall(number, a);
  } else if (number == SYS_mremap) {
    r = uffdlazy::pager::remap(reinterpret_cast<void*>(a[0]), size_t(a[1]), size_t(a[2]), int(a[3]),
                               reinterpret_cast<void*>(a[4]));
  } else {
    r = clone_or_call(number, a);
    // Registrations a checkpoint cannot ask the kernel about afterwards.
    if (number == SYS_rseq) uffdlazy::ckpt::note_rseq(a[0], a[1], a[2], a[3], r);
    if (number == SYS_membarrier) uffdlazy::ckpt::note_membarrier(a[0], a[1], r);
  }
  if (uffdlazy::sys::failed(r)) {
    errno = int(-r);
    return -1;
  }
  return r;
}
