// Reading this process's memory where it may be unreadable (an argument a program passes to the
// kernel, which the kernel validates itself): the kernel copies it, so a bad address is an error
// code, never a SIGSEGV in the shim.
#pragma once

#include <cstddef>

namespace uffdlazy {

// Copies n bytes from `from` (this process's memory) into `to`. 0 on success, else -errno:
// -EFAULT where `from` is not readable; another error if the kernel refused the copy itself
// (seccomp, an old kernel), in which case nothing is known about `from`.
long read_own_memory(const void* from, void* to, size_t n);

}  // namespace uffdlazy
