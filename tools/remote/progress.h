// A progress line for long transfers, on stderr and only when it is a terminal: redrawn at most
// every 250 ms ("push app.snap: 120 of 512 MiB, 85 MiB/s"), cleared when done.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace uffdlazy::remote {

class Progress {
 public:
  Progress(std::string what, uint64_t total);
  ~Progress() { done(); }
  // Bytes done so far (from any thread); redraws if it is time.
  void update(uint64_t bytes);
  void done();
  void set_total(uint64_t total) { total_ = total; }

 private:
  std::string what_;
  uint64_t total_;
  bool tty_;
  bool drawn_ = false;
  uint64_t start_ms_;
  std::atomic<uint64_t> last_ms_{0};
};

}  // namespace uffdlazy::remote
