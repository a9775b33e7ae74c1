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
  bool start(void* (*fn)(void*), void* arg, size_t stack_bytes);
  // Waits for the thread to end and unmaps its stack (tests and the monitor's stop()).
  void join();
  bool started() const { return handle_ != 0; }
  // In a forked child the thread does not exist: forget it (its stack stays mapped, unused).
  void forget() { handle_ = 0; }

 private:
  unsigned long handle_ = 0;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
};

// Names the calling thread (PR_SET_NAME, truncated to 15 bytes).
void name_this_thread(const char* name);

}  // namespace uffdlazy
