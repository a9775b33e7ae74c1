// A log-linear latency histogram (nanoseconds) with a fixed bucket array: no allocation, O(1)
// record, cheap enough to keep dozens of them.
//
// Layout: values below 64 get one bucket each (exact). Above that, every power of two [2^k,
// 2^(k+1)) is split into 32 equal buckets, so a bucket is at most 1/32 of its lower bound wide.
// Percentiles report the bucket's midpoint (clamped to the exact min/max), hence within 1/64
// (1.6%) of the exact value. Values reach 2^40 ns (~1100 s) before they pool in the last bucket;
// count, sum, min and max stay exact regardless.
//
// Concurrency: record() is for a single writer (the monitor thread) and uses plain relaxed
// load/store, no read-modify-write. record_shared() is for histograms several threads may feed
// (fork events); it uses atomic RMW. Readers may read at any time with relaxed loads and see a
// slightly torn but never corrupt snapshot.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace uffdlazy {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr uint64_t kSub = uint64_t(1) << kSubBits;  // buckets per power of two
  static constexpr int kMaxBit = 39;                          // highest exactly binned bit
  static constexpr size_t kBuckets = 2 * kSub + size_t(kMaxBit - kSubBits) * kSub;
  static constexpr uint64_t kMaxTracked = (uint64_t(1) << (kMaxBit + 1)) - 1;

  constexpr LatencyHistogram() = default;
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  void record(uint64_t ns) {
    size_t i = bucket_index(ns);
    bump(counts_[i], 1);
    bump(count_, 1);
    bump(sum_, ns);
    if (ns < min_.load(std::memory_order_relaxed)) min_.store(ns, std::memory_order_relaxed);
    if (ns > max_.load(std::memory_order_relaxed)) max_.store(ns, std::memory_order_relaxed);
  }
  void record_shared(uint64_t ns);

  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t min() const { return count() ? min_.load(std::memory_order_relaxed) : 0; }
  uint64_t max() const { return max_.load(std::memory_order_relaxed); }
  uint64_t mean() const { return count() ? sum() / count() : 0; }
  // The value at or below which p% of the recorded values fall (nearest rank), 0 when empty.
  // p is in thousandths of a percent so core needs no floating point: 99900 means p99.9.
  uint64_t value_at_percentile_milli(uint64_t p_milli) const;
  uint64_t value_at_percentile(double p) const {
    return value_at_percentile_milli(p <= 0 ? 0 : p >= 100 ? 100000 : uint64_t(p * 1000 + 0.5));
  }

  void merge(const LatencyHistogram& other);
  void reset();

  uint32_t bucket_count(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }

  static size_t bucket_index(uint64_t ns) {
    if (ns < 2 * kSub) return size_t(ns);
    if (ns > kMaxTracked) return kBuckets - 1;
    int msb = 63 - __builtin_clzll(ns);
    int shift = msb - kSubBits;
    return size_t(2 * kSub + uint64_t(shift - 1) * kSub + ((ns >> shift) - kSub));
  }
  // [lower, upper) of bucket i; the last bucket's upper bound is the largest tracked value + 1.
  static uint64_t bucket_lower(size_t i) {
    if (i < 2 * kSub) return i;
    uint64_t shift = (i - 2 * kSub) / kSub + 1;
    uint64_t mantissa = kSub + (i - 2 * kSub) % kSub;
    return mantissa << shift;
  }
  static uint64_t bucket_upper(size_t i) { return i + 1 < kBuckets ? bucket_lower(i + 1) : kMaxTracked + 1; }

 private:
  template <typename T>
  static void bump(std::atomic<T>& a, uint64_t n) {
    a.store(T(a.load(std::memory_order_relaxed) + n), std::memory_order_relaxed);
  }

  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> min_{UINT64_MAX};
  std::atomic<uint64_t> max_{0};
  // 32-bit per bucket keeps the struct at ~4.5 KiB; 4 billion faults in one bucket would take
  // hours of nothing but faulting.
  std::atomic<uint32_t> counts_[kBuckets] = {};
};

}  // namespace uffdlazy
