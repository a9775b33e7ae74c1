// The shim's own threads (the monitor, the capture trigger).
//
// Each runs with every signal blocked, so no handler of the program ever runs on it, and on a stack
// the shim maps itself, aside from the program's memory (core/base/aside_mmap.h): never
// registered with the userfaultfd (the monitor must never fault on its own stack), never taken
// from glibc's stack cache, and never shifting the program's mappings. glibc still places the
// thread's descriptor and static TLS at the top of that stack.
#pragma once

#include <cstddef>

namespace uffdlazy {

class HiddenThread {
 public:
  // Starts fn(arg) on a new thread (which names itself: name_this_thread). False if it could not.
  // prepare(arg), if given, runs on the new thread before start() returns: what the thread must
  // have done before the program's next step (take its own descriptor table before the program
  // can close the descriptors it keeps) goes there.
  bool start(void* (*fn)(void*), void* arg, size_t stack_bytes, void (*prepare)(void*) = nullptr);
  // Waits for the thread to end (to have left the thread group) and unmaps its stack (tests, the
  // monitor's stop(), the pager stepping aside).
  void join();
  bool started() const { return handle_ != 0; }
  // The thread's id once it runs (0 before, and after it ended).
  long tid() const { return __atomic_load_n(&tid_, __ATOMIC_ACQUIRE); }
  // In a forked child the thread does not exist: forget it (its stack stays mapped, unused).
  void forget();

 private:
  static void* trampoline(void* self);

  void* (*fn_)(void*) = nullptr;
  void (*prepare_)(void*) = nullptr;
  void* arg_ = nullptr;
  long tid_ = 0;
  int running_ = 0;  // futex word: the thread has recorded its id
  bool counted_out_ = false;  // taken out of glibc's thread count (set_libc_thread_count)
  long started_tid_ = 0;      // the thread's id, for join() to see it leave the thread group
  unsigned long handle_ = 0;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
};

// glibc's count of the threads it runs (__nptl_nthreads): when a thread it started ends and the
// count reaches zero, glibc calls exit(0), so a program whose main() left by pthread_exit ends
// when its last thread does. The shim's threads take themselves out of that count (and always end
// by the exit system call, never through glibc's thread epilogue), so they never keep it above
// zero. Set once, before the first thread starts; without it they are counted as before.
void set_libc_thread_count(unsigned* count);
// That count now: the program's threads glibc started and that have not ended (the shim's are not
// among them), or -1 if unknown. Threads made by a raw clone are not counted.
long libc_thread_count();

// Names the calling thread (PR_SET_NAME, truncated to 15 bytes).
void name_this_thread(const char* name);

// Whether `tid` is one of the shim's own threads of this process (a checkpoint stops the
// program's threads, never these).
bool is_hidden_thread(long tid);
// A hidden thread's id changed (it was resumed from a checkpoint as a new thread).
void hidden_thread_renumbered(long old_tid, long new_tid);

}  // namespace uffdlazy
