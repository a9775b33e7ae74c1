// Plugs the latency account into the monitor: a FaultObserver that turns each callback into a
// FaultRecord for the stats and (if enabled) the trace. Runs on the monitor thread; no locks.
#pragma once

#include "core/latency/fault_stats.h"
#include "core/latency/fault_trace.h"
#include "core/monitor/monitor.h"

namespace uffdlazy {

class LatencyObserver final : public FaultObserver {
 public:
  // trace may be null (no UFFDLAZY_TRACE). `no_region_id` is the id the monitor passes for a
  // fault outside every region; it is reported as kNoRegion.
  constexpr LatencyObserver(FaultStats* stats, FaultTrace* trace, uint32_t no_region_id = kNoRegion)
      : stats_(stats), trace_(trace), no_region_id_(no_region_id) {}

  void fault_served(uint64_t read_ns, uint64_t done_ns, uint32_t tid, uint64_t address, bool write,
                    uint32_t region_id, int resolution, uint32_t pages) override;
  void event_handled(int uffd_event, uint64_t start_ns, uint64_t done_ns) override;
  void installed_ahead(AheadKind kind, uint32_t pages) override {
    stats_->record_ahead(kind == AheadKind::kPrefetch, pages);
  }

  // The record every fault becomes; public so other callers build records the same way.
  static FaultRecord make_record(uint64_t read_ns, uint64_t done_ns, uint32_t tid, uint64_t address, bool write,
                                 uint32_t region_id, Resolution resolution, uint32_t pages);

 private:
  FaultStats* stats_;
  FaultTrace* trace_;
  uint32_t no_region_id_;
};

}  // namespace uffdlazy
