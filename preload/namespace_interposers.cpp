// unshare and setns: the calls the kernel allows only a single-threaded process (see
// core/pager/lone_thread_calls.cpp for which and why). The shim's own threads would make them fail
// with EINVAL (EUSERS for a time namespace) where the program alone succeeds (`unshare -r`,
// `nsenter -U`, bubblewrap, rootless container tools): for such a call they step aside. Every
// other call goes straight to the kernel. syscall(SYS_unshare) and syscall(SYS_setns) come here too
// (process_interposers.cpp).
#include <cerrno>
#include <linux/nsfs.h>
#include <sched.h>

#include "core/base/raw_syscall.h"
#include "core/pager/lazy_pager.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace uffdlazy::preload {

namespace {

// Namespaces whose unsharing or joining needs the caller alone (or not sharing what the shim's
// threads share with it: the filesystem information, the memory).
constexpr long kUnshareAlone = CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM;
constexpr long kSetnsAlone = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWTIME;

bool setns_needs_lone_thread(int fd, int nstype) {
  // A namespace file says which it is (Linux 4.11); a pidfd names its namespaces in the flags.
  long type = sys::ioctl(fd, NS_GET_NSTYPE, nullptr);
  if (type < 0) type = nstype;
  // Unknown (0): stepping aside costs a moment, refusing the call would be wrong.
  return type == 0 || (type & kSetnsAlone);
}

}  // namespace

// The raw system call (SYS_unshare: a0 = flags; SYS_setns: a0 = fd, a1 = nstype), the shim's
// threads stepping aside when it needs them to. The kernel's raw result.
long namespace_call(long number, long a0, long a1) {
  const bool alone = number == SYS_unshare ? (a0 & kUnshareAlone) != 0 : setns_needs_lone_thread(int(a0), int(a1));
  const bool aside = alone && pager::before_lone_thread_call();
  const long r = sys::call6(number, a0, a1);
  if (aside) pager::after_lone_thread_call();
  return r;
}

}  // namespace uffdlazy::preload

namespace {

int result(long r) {
  if (uffdlazy::sys::failed(r)) {
    errno = int(-r);
    return -1;
  }
  return int(r);
}

}  // namespace

UFFDLAZY_EXPORT int unshare(int flags) { return result(uffdlazy::preload::namespace_call(SYS_unshare, flags, 0)); }

UFFDLAZY_EXPORT int setns(int fd, int nstype) {
  return result(uffdlazy::preload::namespace_call(SYS_setns, fd, nstype));
}
