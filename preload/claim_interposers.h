// The program's own userfaultfd registrations and memory locks (see claim_interposers.cpp).
#pragma once

namespace uffdlazy::preload {

// syscall(2) with one of the numbers claim_interposers.cpp handles (ioctl, mlock, mlock2,
// mlockall, munlockall): makes the call and stores the kernel's raw result (or -errno) in
// *result. False for any other number (nothing done).
bool claim_syscall(long number, const long* a, long* result);

}  // namespace uffdlazy::preload
