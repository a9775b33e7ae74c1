#include "core/base/own_memory.h"

#include <cerrno>
#include <sys/uio.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

long read_own_memory(const void* from, void* to, size_t n) {
  // process_vm_readv on this very process: always permitted (same thread group), and a page the
  // monitor has not served yet is faulted in and served like any kernel access.
  iovec local = {to, n};
  iovec remote = {const_cast<void*>(from), n};
  const long r = sys::call6(SYS_process_vm_readv, sys::getpid(), reinterpret_cast<long>(&local), 1,
                            reinterpret_cast<long>(&remote), 1, 0);
  if (r < 0) return r;
  return size_t(r) == n ? 0 : -EFAULT;
}

}  // namespace uffdlazy
