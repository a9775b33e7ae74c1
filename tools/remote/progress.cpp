#include "tools/remote/progress.h"

#include <chrono>
#include <cstdio>
#include <unistd.h>

namespace uffdlazy::remote {

namespace {

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

}  // namespace

Progress::Progress(std::string what, uint64_t total)
    : what_(std::move(what)), total_(total), tty_(isatty(2)), start_ms_(now_ms()) {}

void Progress::update(uint64_t bytes) {
  if (!tty_) return;
  const uint64_t now = now_ms();
  uint64_t last = last_ms_.load(std::memory_order_relaxed);
  if (now - last < 250 || !last_ms_.compare_exchange_strong(last, now)) return;
  const double secs = double(now - start_ms_) / 1000.0;
  std::fprintf(stderr, "\r%s: %llu of %llu MiB, %.0f MiB/s   ", what_.c_str(), (unsigned long long)(bytes >> 20),
               (unsigned long long)(total_ >> 20), secs > 0 ? double(bytes) / 1048576.0 / secs : 0.0);
  drawn_ = true;
}

void Progress::done() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
}

}  // namespace uffdlazy::remote
