#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "core/latency/latency_histogram.h"

namespace uffdlazy {
namespace {

uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  uint64_t p_milli = uint64_t(p * 1000 + 0.5);
  uint64_t rank = (p_milli * sorted.size() + 99999) / 100000;
  if (rank == 0) rank = 1;
  return sorted[rank - 1];
}

TEST(LatencyHistogram, SmallAndCheap) {
  EXPECT_LE(sizeof(LatencyHistogram), 5 * 1024u);
  // 1 ns .. >= 1000 s are binned, not pooled.
  EXPECT_GE(LatencyHistogram::kMaxTracked, 1000ull * 1000 * 1000 * 1000);
}

TEST(LatencyHistogram, BucketsTileTheRange) {
  for (size_t i = 0; i + 1 < LatencyHistogram::kBuckets; i++) {
    ASSERT_EQ(LatencyHistogram::bucket_upper(i), LatencyHistogram::bucket_lower(i + 1)) << i;
    ASSERT_LT(LatencyHistogram::bucket_lower(i), LatencyHistogram::bucket_upper(i)) << i;
    // Width at most 1/32 of the lower bound (beyond the exact unit buckets).
    uint64_t lo = LatencyHistogram::bucket_lower(i), w = LatencyHistogram::bucket_upper(i) - lo;
    if (w > 1) {
      ASSERT_LE(w * 32, lo) << i;
    }
  }
  for (uint64_t v : {0ull, 1ull, 63ull, 64ull, 65ull, 1000ull, 123456789ull, (1ull << 40) - 1}) {
    size_t i = LatencyHistogram::bucket_index(v);
    EXPECT_LE(LatencyHistogram::bucket_lower(i), v);
    EXPECT_GT(LatencyHistogram::bucket_upper(i), v);
  }
  EXPECT_EQ(LatencyHistogram::bucket_index(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, EmptyIsAllZero) {
  auto h = std::make_unique<LatencyHistogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->min(), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->mean(), 0u);
  EXPECT_EQ(h->value_at_percentile(99), 0u);
}

TEST(LatencyHistogram, PercentilesWithinStatedErrorOnRandomData) {
  std::mt19937_64 rng(42);
  // Log-normal-ish latencies from ~1 us to ~10 ms, plus a few tiny and huge values.
  std::lognormal_distribution<double> dist(std::log(20000.0), 1.5);
  for (int round = 0; round < 5; round++) {
    auto h = std::make_unique<LatencyHistogram>();
    std::vector<uint64_t> values;
    size_t n = 1000 + round * 20000;
    for (size_t i = 0; i < n; i++) values.push_back(uint64_t(dist(rng)) + 1);
    values.push_back(3);
    values.push_back(900ull * 1000 * 1000 * 1000);
    for (uint64_t v : values) h->record(v);
    std::sort(values.begin(), values.end());
    unsigned __int128 sum = 0;
    for (uint64_t v : values) sum += v;
    EXPECT_EQ(h->count(), values.size());
    EXPECT_EQ(h->min(), values.front());
    EXPECT_EQ(h->max(), values.back());
    EXPECT_EQ(h->sum(), uint64_t(sum));
    EXPECT_EQ(h->mean(), uint64_t(sum / values.size()));
    for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
      double exact = double(exact_percentile(values, p));
      double got = double(h->value_at_percentile(p));
      EXPECT_LE(std::abs(got - exact), exact / 64.0) << "p" << p << " exact " << exact << " got " << got;
    }
  }
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  auto h = std::make_unique<LatencyHistogram>();
  for (uint64_t v = 1; v <= 50; v++) h->record(v);
  EXPECT_EQ(h->value_at_percentile(50), 25u);
  EXPECT_EQ(h->value_at_percentile(90), 45u);
  EXPECT_EQ(h->value_at_percentile(100), 50u);
  EXPECT_EQ(h->value_at_percentile(0), 1u);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  auto a = std::make_unique<LatencyHistogram>();
  auto b = std::make_unique<LatencyHistogram>();
  auto all = std::make_unique<LatencyHistogram>();
  std::mt19937_64 rng(7);
  for (int i = 0; i < 5000; i++) {
    uint64_t v = rng() % 5000000;
    (i % 3 ? a : b)->record(v);
    all->record(v);
  }
  a->merge(*b);
  EXPECT_EQ(a->count(), all->count());
  EXPECT_EQ(a->sum(), all->sum());
  EXPECT_EQ(a->min(), all->min());
  EXPECT_EQ(a->max(), all->max());
  for (size_t i = 0; i < LatencyHistogram::kBuckets; i++) ASSERT_EQ(a->bucket_count(i), all->bucket_count(i));
  for (double p : {50.0, 99.0, 99.9}) EXPECT_EQ(a->value_at_percentile(p), all->value_at_percentile(p));

  auto empty = std::make_unique<LatencyHistogram>();
  a->merge(*empty);
  EXPECT_EQ(a->count(), all->count());
  EXPECT_EQ(a->min(), all->min());
}

TEST(LatencyHistogram, ResetAndSharedRecording) {
  auto h = std::make_unique<LatencyHistogram>();
  h->record(100);
  h->reset();
  EXPECT_EQ(h->count(), 0u);
  h->record_shared(700);
  h->record_shared(300);
  EXPECT_EQ(h->count(), 2u);
  EXPECT_EQ(h->min(), 300u);
  EXPECT_EQ(h->max(), 700u);
  EXPECT_EQ(h->mean(), 500u);
}

}  // namespace
}  // namespace uffdlazy
