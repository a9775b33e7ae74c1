#include "core/latency/stats_line.h"

namespace uffdlazy {

void append_us(LineWriter* out, uint64_t ns) {
  // Round half up at the shown precision; fewer decimals as values grow keep the line short.
  if (ns < 10000) {
    out->fixed((ns + 5) / 10, 2);
  } else if (ns < 1000000) {
    out->fixed((ns + 50) / 100, 1);
  } else {
    out->u64((ns + 500) / 1000);
  }
  out->str("us");
}

void format_stats_line(const FaultStats& stats, LineWriter* out) {
  const auto& t = stats.totals();
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  const LatencyHistogram& h = stats.overall();
  out->clear();
  out->str("uffdlazy: faults=").u64(get(t.faults));
  out->str(" pages=").u64(get(t.pages_served));
  out->str(" zero=").u64(get(t.zero_pages));
  out->str(" snapshot=").u64(get(t.snapshot_pages));
  out->str(" present=").u64(get(t.already_present));
  out->str(" regions=").u64(get(t.regions_registered));
  for (size_t e = 0; e < kEventKindCount; e++) {
    out->ch(' ').str(event_name(EventKind(e))).ch('=').u64(stats.event(EventKind(e)).count());
  }
  out->str(" p50=");
  append_us(out, h.value_at_percentile_milli(50000));
  out->str(" p99=");
  append_us(out, h.value_at_percentile_milli(99000));
  out->str(" max=");
  append_us(out, h.max());
}

}  // namespace uffdlazy
