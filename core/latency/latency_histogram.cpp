#include "core/latency/latency_histogram.h"

#include "core/base/store_changed.h"

namespace uffdlazy {

void LatencyHistogram::record_shared(uint64_t ns) {
  counts_[bucket_index(ns)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(ns, std::memory_order_relaxed);
  uint64_t cur = min_.load(std::memory_order_relaxed);
  while (ns < cur && !min_.compare_exchange_weak(cur, ns, std::memory_order_relaxed)) {
  }
  cur = max_.load(std::memory_order_relaxed);
  while (ns > cur && !max_.compare_exchange_weak(cur, ns, std::memory_order_relaxed)) {
  }
}

uint64_t LatencyHistogram::value_at_percentile_milli(uint64_t p_milli) const {
  const uint64_t n = count();
  if (n == 0) return 0;
  if (p_milli > 100000) p_milli = 100000;
  // Nearest rank: the smallest value with at least ceil(p * n) values at or below it.
  // Split n so p * n cannot overflow (and no 128-bit division pulls in libgcc, which the
  // shim does not link).
  const uint64_t q = n / 100000, r = n % 100000;
  uint64_t rank = p_milli * q + (p_milli * r + 99999) / 100000;
  if (rank == 0) rank = 1;
  const uint64_t lo = min(), hi = max();
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; i++) {
    seen += bucket_count(i);
    if (seen < rank) continue;
    uint64_t lower = bucket_lower(i), upper = bucket_upper(i);
    // The midpoint halves the worst-case error of reporting either bound.
    uint64_t v = lower + (upper - lower) / 2;
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return v;
  }
  return hi;  // a reader raced the writer and saw count ahead of the buckets
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count() == 0) return;
  for (size_t i = 0; i < kBuckets; i++) {
    uint32_t c = other.bucket_count(i);
    if (c) bump(counts_[i], c);
  }
  bump(count_, other.count());
  bump(sum_, other.sum());
  if (other.min() < min_.load(std::memory_order_relaxed)) min_.store(other.min(), std::memory_order_relaxed);
  if (other.max() > max_.load(std::memory_order_relaxed)) max_.store(other.max(), std::memory_order_relaxed);
}

void LatencyHistogram::reset() {
  // Only what is set (a forked child's pages stay shared with its parent's).
  for (auto& c : counts_) store_changed(c, 0);
  store_changed(count_, 0);
  store_changed(sum_, 0);
  store_changed(min_, UINT64_MAX);
  store_changed(max_, 0);
}

}  // namespace uffdlazy
