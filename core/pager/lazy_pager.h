// What the shim does with the target's mappings, independent of how it learns of them.
//
// A front end (today: symbol interposition in preload/; later perhaps a syscall-level
// interceptor) reports each successful mmap/mremap/munmap/madvise and the fork and exit points;
// the pager decides what to register, keeps the region table, and runs the monitor. One pager per
// process image; every function here is safe to call before start() (it then does nothing).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/env_config.h"

namespace uffdlazy::pager {

struct AddressRange {
  uintptr_t start;
  uintptr_t end;  // exclusive
};

// Reads and validates the configuration (a bad one stops the program with status 2). Done once;
// start() calls it too. The front end reads it first to choose how to intercept.
const Config& configure(char** envp);

// Reads the configuration and, unless disabled or unavailable, starts the monitor. Prints the
// fail-open line, or exits for a bad configuration or in strict mode. argv is the program's
// (to tell a wrapper such as env or sh -c from a program a snapshot does not belong to).
void start(char** envp, char** argv);
bool active();

// How the front end learns of mappings ("libc" or "symbols"), for the summary line.
void set_interception(const char* how);
// Memory the shim itself dirties outside its aside mappings (its own .data/.bss, the code pages
// it patched): never registered, and left out of the seen share. At most 16 ranges.
void note_own_memory(AddressRange r);
// Where the C library's code lies. A mapping made from there is the allocator's (malloc's chunks
// and arenas, stdio's buffers): recorded as seen but never given a snapshot's content, because the
// allocator assumes fresh memory reads zeros (calloc does not clear an mmapped chunk or a freshly
// grown heap). At most 4 ranges.
void note_allocator_code(AddressRange r);

void mapped(void* addr, size_t len, int prot, int flags, int fd, const void* caller);
// Carries out the program's mremap (the system call, split per mapping where the shim's
// registration would make the kernel refuse a move across several; see range_move.cpp) and
// updates the table. Returns the kernel's raw result: the new address or -errno.
long remap(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr);
void remapped(void* old_addr, size_t old_len, void* new_addr, size_t new_len, int flags);
void unmapped(void* addr, size_t len);
void advised(void* addr, size_t len, int advice);
// The program is about to munmap, or madvise pages away (the kernel then sends an event and waits
// for the monitor): returns once no fault is stuck behind events the monitor has already read
// (at once in the common case; see Monitor::wait_while_fills_stalled).
void before_dropping_memory();

// The program break moved (brk, sbrk; malloc's main heap). A grown heap is registered; a shrunk
// one is left to the kernel's UNMAP event. Both are the kernel's answers (page rounding is done here).
void break_moved(uintptr_t old_break, uintptr_t new_break);

// Memory that existed before the shim could see it mapped: registers the private anonymous
// mappings lying inside the `wanted` ranges (the .bss of loaded objects), and the brk heap if
// with_heap. Checked against /proc/self/maps: only what really is private anonymous memory, of
// at least the minimum size, is registered. Never restored from a snapshot (its content belongs
// to state the restore does not bring back).
void adopt_existing(const AddressRange* wanted, size_t n, bool with_heap);

// Ranges the program takes for itself (program_claims.cpp). Each is a no-op where nothing of
// the range is registered.
//
// The program's own userfaultfd is about to register [addr, addr + len), or the program is about
// to lock it: the shim steps aside there for good. What a snapshot still owes is put in place, then
// the range is unregistered and forgotten; the kernel (or the program's handler) pages it from
// then on. A new mapping made there later is registered as usual.
void stepping_aside(void* addr, size_t len);
// mlockall(flags) is about to be called: MCL_CURRENT steps aside everywhere; MCL_FUTURE leaves
// every later mapping to the kernel, until munlockall or an mlockall without MCL_FUTURE (the
// kernel's rule). Returns whether MCL_FUTURE was in effect before, for future_locking() to put
// back should the kernel refuse the call.
bool locking_all(int flags);
// Whether MCL_FUTURE is in effect (munlockall ends it).
void future_locking(bool on);
// A read or write of the program's own memory through /proc/self/mem, which the kernel does
// without waiting for a fault handler, stopped at `start` and is to go on up to `end`: the
// registered pages there are put in place. False (nothing done) when the page at `start` is not
// registered: the kernel's answer stands.
bool making_present(uintptr_t start, uintptr_t end);

// fork()'s own handlers only: a checkpoint's process tree (core/checkpoint/tree.h) reserves the
// child's slot before the copy, and notes in the parent that the copy was made.
void reserve_tree_slot();
void tree_slot_forked();
void before_fork();
void after_fork_parent();
void after_fork_child();

// A child that shares this process's memory without being one of its threads (clone(CLONE_VM)
// without CLONE_THREAD, vfork) may outlive it, and then nobody serves the registered ranges: its
// faults would wait forever on a userfaultfd that its descriptor table keeps open. So no descriptor
// table but the shim's own threads' may keep the userfaultfd: before such a child is made,
// `shares_descriptors` (CLONE_FILES): the shim gives up its number in the shared table (ranges
// already registered stay served while this process lives, later mappings are left to the kernel,
// as when the program closes the number); otherwise the child closes its copy first thing
// (in_child_sharing_memory). Once this process is gone the userfaultfd is released, which hands
// every range back to the kernel. `fill`: a child that runs on (not a vfork, whose parent waits):
// every page a snapshot still owes is put in place first, and so is every region matched from
// then on, so that the child never reads zeros for them.
void before_child_sharing_memory(bool shares_descriptors, bool fill);
// In such a child (its own copy of the descriptor table), before it runs anything else. Touches
// nothing of the shared memory but reads.
void in_child_sharing_memory();

// A system call the kernel allows only a single-threaded process is about to be made by this
// thread: unshare of a user namespace (or CLONE_THREAD, CLONE_SIGHAND, CLONE_VM), setns into a user,
// mount or time namespace. If the shim's threads are what stands in the way, they end (the
// userfaultfd, its registrations and the region table stay: faults wait in the kernel meanwhile)
// and true is returned: after_lone_thread_call() must follow the call, and starts them again.
// Signals are blocked in between. False: nothing was done (not this process's main thread, other
// program threads, or the shim could not be sure to start again as it was).
bool before_lone_thread_call();
void after_lone_thread_call();

// The process is exiting normally: print the summary and write reports. The monitor keeps
// serving, since destructors that run later may still touch lazy memory.
void at_exit();

}  // namespace uffdlazy::pager
