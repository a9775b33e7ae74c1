#include "core/latency/fault_stats.h"

#include <initializer_list>

namespace uffdlazy {

const char* event_name(EventKind k) {
  switch (k) {
    case EventKind::kRemove: return "remove";
    case EventKind::kUnmap: return "unmap";
    case EventKind::kRemap: return "remap";
    case EventKind::kFork: return "fork";
  }
  return "unknown";
}

void FaultStats::reset() {
  for (auto* c : {&totals_.faults, &totals_.pages_served, &totals_.zero_pages, &totals_.snapshot_pages,
                  &totals_.duplicates, &totals_.already_present, &totals_.unmapped, &totals_.errors,
                  &totals_.regions_registered})
    c->store(0, std::memory_order_relaxed);
  overall_.reset();
  for (auto& h : by_kind_) h.reset();
  for (auto& h : by_region_) h.reset();
  for (auto& h : events_) h.reset();
  regions_.reset();
  timeline_.reset();
}

}  // namespace uffdlazy
