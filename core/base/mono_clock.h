// The clock every latency is measured with: CLOCK_MONOTONIC through libc's vDSO entry (no lock,
// usually no syscall), in nanoseconds.
#pragma once

#include <cstdint>
#include <ctime>

namespace uffdlazy {

inline uint64_t mono_now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline uint64_t realtime_now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// What one clock read costs here, in ns (the median of a few timed batches). Each measured
// latency spans two reads, so it is inflated by about this much.
uint64_t measure_clock_overhead_ns();

}  // namespace uffdlazy
