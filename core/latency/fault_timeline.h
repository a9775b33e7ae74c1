// Faults per time interval over the whole run, with a fixed number of counters.
//
// Recording is one shift and one increment. The interval starts at 2^20 ns (~1 ms) and, when a
// fault lands past the last counter, doubles: neighbouring counters are folded pairwise, so any
// run length fits in kSlots counters at the finest resolution that covers it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace uffdlazy {

class FaultTimeline {
 public:
  static constexpr size_t kSlots = 256;
  static constexpr uint32_t kInitialShift = 20;

  void start(uint64_t origin_ns) {
    reset();
    origin_ns_ = origin_ns;
  }
  void reset();

  void record(uint64_t t_ns, uint64_t n = 1) {
    uint64_t rel = t_ns > origin_ns_ ? t_ns - origin_ns_ : 0;
    uint32_t shift = shift_.load(std::memory_order_relaxed);
    while ((rel >> shift) >= kSlots) shift = fold();
    auto& c = counts_[rel >> shift];
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  uint64_t origin_ns() const { return origin_ns_; }
  uint64_t interval_ns() const { return uint64_t(1) << shift_.load(std::memory_order_relaxed); }
  uint64_t count(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  // One past the last non-empty counter (0 if nothing was recorded).
  size_t used() const;

 private:
  uint32_t fold();

  uint64_t origin_ns_ = 0;
  std::atomic<uint32_t> shift_{kInitialShift};
  std::atomic<uint64_t> counts_[kSlots] = {};
};

}  // namespace uffdlazy
