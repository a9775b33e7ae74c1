#include "core/base/mono_clock.h"

namespace uffdlazy {

uint64_t measure_clock_overhead_ns() {
  constexpr int kBatches = 5, kReads = 200;
  uint64_t per[kBatches];
  for (int b = 0; b < kBatches; b++) {
    uint64_t t0 = mono_now_ns(), t = t0;
    for (int i = 0; i < kReads; i++) t = mono_now_ns();
    per[b] = (t - t0) / kReads;
  }
  // The median ignores a batch that a preemption landed in.
  for (int i = 1; i < kBatches; i++)
    for (int j = i; j > 0 && per[j - 1] > per[j]; j--) {
      uint64_t x = per[j];
      per[j] = per[j - 1];
      per[j - 1] = x;
    }
  return per[kBatches / 2];
}

}  // namespace uffdlazy
