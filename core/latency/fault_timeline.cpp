#include "core/latency/fault_timeline.h"

#include "core/base/store_changed.h"

namespace uffdlazy {

void FaultTimeline::reset() {
  // Only what is set (a forked child's pages stay shared with its parent's).
  for (auto& c : counts_) store_changed(c, 0);
  store_changed(shift_, kInitialShift);
}

uint32_t FaultTimeline::fold() {
  for (size_t i = 0; i < kSlots / 2; i++) {
    uint64_t v = counts_[2 * i].load(std::memory_order_relaxed) + counts_[2 * i + 1].load(std::memory_order_relaxed);
    counts_[i].store(v, std::memory_order_relaxed);
  }
  for (size_t i = kSlots / 2; i < kSlots; i++) counts_[i].store(0, std::memory_order_relaxed);
  uint32_t s = shift_.load(std::memory_order_relaxed) + 1;
  shift_.store(s, std::memory_order_relaxed);
  return s;
}

size_t FaultTimeline::used() const {
  size_t n = kSlots;
  while (n && count(n - 1) == 0) n--;
  return n;
}

}  // namespace uffdlazy
