// Calls by which the program takes a range of its memory for itself, so that the shim must step
// aside there first (core/pager/program_claims.cpp):
//   - ioctl(UFFDIO_REGISTER) on the program's own userfaultfd (a range registered with the shim's
//     would be refused with EBUSY: a VMA belongs to one userfaultfd);
//   - mlock, mlock2, mmap(MAP_LOCKED) (seen by the mmap hook) and mlockall: the kernel populates
//     locked memory itself, also inside a mremap that grows it, where a registered range would
//     wait for the monitor forever.
// The same calls made through syscall(2) reach claim_syscall(). Only UFFDIO_REGISTER costs
// anything among the ioctls: every other request goes straight to the kernel. Each call is issued
// as a raw system call with glibc's behaviour (errno only on failure).
#include <cerrno>
#include <cstdarg>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "core/base/raw_syscall.h"
#include "core/pager/lazy_pager.h"
#include "preload/claim_interposers.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace uffdlazy::preload {

namespace {

long finish(long r) {
  if (sys::failed(r)) {
    errno = int(-r);
    return -1;
  }
  return r;
}

// The range a UFFDIO_REGISTER names. Read through the kernel, so that a bad pointer is the
// kernel's EFAULT to report (from the ioctl itself), not a crash in the shim.
void before_register(const void* arg) {
  uffdio_register reg;
  iovec local = {&reg, sizeof reg};
  iovec remote = {const_cast<void*>(arg), sizeof reg};
  const long n = sys::call6(SYS_process_vm_readv, sys::getpid(), reinterpret_cast<long>(&local), 1,
                            reinterpret_cast<long>(&remote), 1, 0);
  if (n != long(sizeof reg)) return;
  pager::stepping_aside(reinterpret_cast<void*>(reg.range.start), size_t(reg.range.len));
}

long ioctl_call(long fd, unsigned long request, long arg) {
  // The kernel reads the request as 32 bits (a program may pass it sign-extended).
  if (uint32_t(request) == uint32_t(UFFDIO_REGISTER)) before_register(reinterpret_cast<const void*>(arg));
  return sys::call6(SYS_ioctl, fd, long(request), arg);
}

long mlock_call(long addr, long len) {
  pager::stepping_aside(reinterpret_cast<void*>(addr), size_t(len));
  return sys::call6(SYS_mlock, addr, len);
}

long mlock2_call(long addr, long len, long flags) {
  pager::stepping_aside(reinterpret_cast<void*>(addr), size_t(len));
  long r = sys::call6(SYS_mlock2, addr, len, flags);
  // glibc: a kernel without mlock2 still locks when no flag asks for more.
  if (r == -ENOSYS && flags == 0) r = sys::call6(SYS_mlock, addr, len);
  return r;
}

long mlockall_call(long flags) {
  const bool was = pager::locking_all(int(flags));
  const long r = sys::call6(SYS_mlockall, flags);
  // Refused (bad flags, over RLIMIT_MEMLOCK): the kernel changed nothing, neither do we.
  if (sys::failed(r)) pager::future_locking(was);
  return r;
}

long munlockall_call() {
  const long r = sys::call6(SYS_munlockall);
  if (!sys::failed(r)) pager::future_locking(false);
  return r;
}

}  // namespace

bool claim_syscall(long number, const long* a, long* result) {
  switch (number) {
    case SYS_ioctl: *result = ioctl_call(a[0], (unsigned long)a[1], a[2]); return true;
    case SYS_mlock: *result = mlock_call(a[0], a[1]); return true;
    case SYS_mlock2: *result = mlock2_call(a[0], a[1], a[2]); return true;
    case SYS_mlockall: *result = mlockall_call(a[0]); return true;
    case SYS_munlockall: *result = munlockall_call(); return true;
    default: return false;
  }
}

}  // namespace uffdlazy::preload

using namespace uffdlazy::preload;

UFFDLAZY_EXPORT int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  const long arg = va_arg(ap, long);
  va_end(ap);
  return int(finish(ioctl_call(fd, request, arg)));
}

UFFDLAZY_EXPORT int mlock(const void* addr, size_t len) {
  return int(finish(mlock_call(reinterpret_cast<long>(addr), long(len))));
}

UFFDLAZY_EXPORT int mlock2(const void* addr, size_t len, unsigned int flags) {
  return int(finish(mlock2_call(reinterpret_cast<long>(addr), long(len), long(flags))));
}

UFFDLAZY_EXPORT int mlockall(int flags) { return int(finish(mlockall_call(flags))); }

UFFDLAZY_EXPORT int munlockall() { return int(finish(munlockall_call())); }
