// Waiting for another thread of this process to be blocked where a test needs it (in a userfault,
// in munmap waiting for its event to be read): read from /proc, never guessed with a sleep.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace uffdlazy::test {

inline int current_tid() { return int(syscall(SYS_gettid)); }

// The kernel function the thread is sleeping in ("" while it runs).
inline std::string wait_channel(int tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/wchan");
  std::string s;
  std::getline(f, s);
  return s == "0" ? "" : s;
}

// Polls until the thread (whose tid it publishes in `tid`) sleeps in `function`. False after 10 s.
inline bool wait_until_blocked_in(const std::atomic<int>& tid, const std::string& function) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    const int t = tid.load();
    if (t && wait_channel(t) == function) return true;
    std::this_thread::yield();
  }
  return false;
}

}  // namespace uffdlazy::test
