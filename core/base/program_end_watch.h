// Notices that every thread of the program is gone while the shim's own threads still run.
//
// A process ends when its last thread does. The shim's threads (the monitor, the copy helper...)
// belong to the process too, so a program whose last thread leaves without exit() (the exit system
// call: syscall(SYS_exit), what seccomp strict mode allows, a main() that left by the exit
// system call before its other threads ended) would otherwise never end: a zombie main thread
// and the shim's threads waiting forever. (A main() leaving by pthread_exit is glibc's business: it
// calls exit(0) when the last thread it counts ends, and the shim's threads are not counted; see
// set_libc_thread_count.)
//
// The watch is a hidden thread. It first waits for the main thread (the thread-group leader) to
// end: the kernel clears and wakes the futex word the main thread gave set_tid_address (glibc's
// thread id cache) when it exits, however it exits. Then, while other program threads run, it
// waits on a pidfd of each (PIDFD_THREAD, Linux 6.9: readable when that thread ends; older kernels:
// looked at again every 100 ms) and reads their exit codes (PIDFD_GET_INFO, Linux 6.15; 0 when
// unknown, which is what glibc's threads leave with). The program threads are those listed in
// /proc/self/task that are not the shim's (is_hidden_thread); without /proc the watch gives up.
// Once none is left it calls `ended` with the exit status the process would have had without the
// shim: that of the program thread that ended last (the kernel gives a process whose threads all
// leave by the exit system call the status of the last one).
//
// It runs on a descriptor table of its own that holds one descriptor of the shim's (opening /proc
// never takes one of the program's numbers) and allocates nothing.
#pragma once

#include <cstdint>

#include "core/base/hidden_thread.h"

namespace uffdlazy {

class ProgramEndWatch {
 public:
  using Ended = void (*)(int wait_status);

  // On the main thread (the thread-group leader) only: learns where the kernel will announce its
  // end (PR_GET_TID_ADDRESS). False on another thread, or if the kernel does not say.
  bool arm();
  // Starts the watch (after arm()). `ended` runs on the watch's thread and must not return;
  // `keep_fd` (-1: none) is the one descriptor of the process's it may use there.
  bool start(Ended ended, int keep_fd);
  // Ends the watch while the main thread still runs (it is waiting for the main thread then).
  void stop();
  // In a forked child: the thread was the parent's.
  void forget();
  bool running() const { return thread_.started(); }

 private:
  static void* thread_main(void* self);
  void run();
  // The exit status of the main thread, a zombie now (/proc/self/stat); 0 if unreadable.
  int main_thread_status() const;

  HiddenThread thread_;
  int* leader_tid_word_ = nullptr;
  Ended ended_ = nullptr;
  int keep_fd_ = -1;
  int stop_ = 0;
  int left_ = 0;  // futex word: the thread saw stop_ and no longer waits on the main thread's word
};

}  // namespace uffdlazy
