// What the shim does with the target's mappings, independent of how it learns of them.
//
// A front end (today: symbol interposition in preload/; later perhaps a syscall-level
// interceptor) reports each successful mmap/mremap/munmap/madvise and the fork and exit points;
// the pager decides what to register, keeps the region table, and runs the monitor. One pager per
// process image; every function here is safe to call before start() (it then does nothing).
#pragma once

#include <cstddef>

namespace uffdlazy::pager {

// Reads the configuration and, unless disabled or unavailable, starts the monitor. Prints the
// fail-open line, or exits for a bad configuration or in strict mode. argv is the program's
// (to tell a wrapper such as env or sh -c from a program a snapshot does not belong to).
void start(char** envp, char** argv);
bool active();

void mapped(void* addr, size_t len, int prot, int flags, int fd, const void* caller);
// Carries out the program's mremap (the system call, split per mapping where the shim's
// registration would make the kernel refuse a move across several; see range_move.cpp) and
// updates the table. Returns the kernel's raw result: the new address or -errno.
long remap(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr);
void remapped(void* old_addr, size_t old_len, void* new_addr, size_t new_len, int flags);
void unmapped(void* addr, size_t len);
void advised(void* addr, size_t len, int advice);

void before_fork();
void after_fork_parent();
void after_fork_child();

// The process is exiting normally: print the summary and write reports. The monitor keeps
// serving, since destructors that run later may still touch lazy memory.
void at_exit();

}  // namespace uffdlazy::pager
