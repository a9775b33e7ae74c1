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

#include "core/base/own_memory.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/process_settings.h"
#include "core/pager/lazy_pager.h"
#include "preload/claim_interposers.h"

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

long namespace_call(long number, long a0, long a1);  // namespace_interposers.cpp

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

namespace {

// What a child sharing the memory runs first (see pager::before_child_sharing_memory): kept at the
// top of its own stack, where nothing of the parent's can reach it.
struct SharedMemoryChild {
  int (*fn)(void*);
  void* arg;
};

int start_shared_memory_child(void* start) {
  const SharedMemoryChild c = *static_cast<const SharedMemoryChild*>(start);
  uffdlazy::pager::in_child_sharing_memory();
  return c.fn(c.arg);
}

}  // namespace

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
  // A process that shares the memory (not a thread) may outlive this one.
  const bool shares_memory = (flags & CLONE_VM) && !(flags & CLONE_THREAD) && uffdlazy::pager::active();
  if (shares_memory && fn && stack) {
    uffdlazy::pager::before_child_sharing_memory(flags & CLONE_FILES, !(flags & CLONE_VFORK));
    if (!(flags & CLONE_FILES)) {
      // Its own copy of the descriptor table: it closes the shim's userfaultfd there first.
      auto top = (reinterpret_cast<uintptr_t>(stack) - sizeof(SharedMemoryChild)) & ~uintptr_t(15);
      auto* start = reinterpret_cast<SharedMemoryChild*>(top);
      *start = {fn, arg};
      fn = start_shared_memory_child;
      arg = start;
      stack = start;
    }
  }
  int r = g_real_clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
  if (copies_memory) uffdlazy::pager::after_fork_parent();
  return r;
}

#if defined(__x86_64__)
// vfork: the child borrows the parent's stack until it calls exec or _exit, so this is glibc's own
// sequence (the return address kept in a register, not on the stack the child may overwrite), with
// one addition in the child: it closes its copy of the shim's userfaultfd (see
// pager::before_child_sharing_memory), so that a child whose parent is killed meanwhile is not
// left waiting on it. The parent waits for the child: nothing owed needs filling first.
extern "C" __attribute__((visibility("hidden"))) void uffdlazy_vfork_child() {
  uffdlazy::pager::in_child_sharing_memory();
}

extern "C" __attribute__((visibility("hidden"))) long uffdlazy_vfork_failed(long r) {
  errno = int(-r);
  return -1;
}

__asm__(R"(
  .text
  .globl vfork
  .type vfork, @function
vfork:
  popq %rdi
  movl $58, %eax
  syscall
  testq %rax, %rax
  jz 1f
  pushq %rdi
  cmpq $-4095, %rax
  jae 2f
  ret
2:
  movq %rax, %rdi
  jmp uffdlazy_vfork_failed
1:
  pushq %rdi
  subq $8, %rsp
  call uffdlazy_vfork_child
  addq $8, %rsp
  xorl %eax, %eax
  ret
  .size vfork, .-vfork
)");
static_assert(SYS_vfork == 58);
#endif

namespace {

// Whether a clone3 call with these arguments makes a child with a copy of the memory. The
// structure is the program's and the kernel validates it: a size it refuses without reading (below
// the first version) or a structure it cannot read makes no child. The flags are
// read the way the kernel reads them (copied, never dereferenced); if even that copy is refused,
// the answer is yes: filling owed pages is never wrong, only slower.
bool clone3_copies_memory(const void* args, size_t size) {
  if (size < CLONE_ARGS_SIZE_VER0) return false;
  uint64_t flags = 0;
  const long r = uffdlazy::read_own_memory(args, &flags, sizeof flags);
  if (r == -EFAULT) return false;
  return r != 0 || !(flags & CLONE_VM);
}

// A raw system call, with the pre-fork fill when it is a clone that copies the memory.
long clone_or_call(long number, const long* a) {
  bool copies_memory = false;
  if (number == SYS_clone) {
    copies_memory = !(uint64_t(a[0]) & CLONE_VM);
  } else if (number == SYS_clone3 && uffdlazy::pager::active()) {
    copies_memory = clone3_copies_memory(reinterpret_cast<const void*>(a[0]), size_t(a[1]));
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
// (libc has no wrapper for them: a checkpoint must not cut them short, io_interposers.cpp), for
// SYS_rseq and SYS_membarrier (a registration a checkpoint must know of:
// core/checkpoint/process_settings.h), for SYS_unshare and SYS_setns (see
// namespace_interposers.cpp), and for the calls by which a program takes memory for itself
// (ioctl's UFFDIO_REGISTER, the mlock family: claim_interposers.cpp). Every other number goes straight to the
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
  } else if (number == SYS_unshare || number == SYS_setns) {
    r = uffdlazy::preload::namespace_call(number, a[0], a[1]);
  } else if (!uffdlazy::preload::claim_syscall(number, a, &r)) {
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
