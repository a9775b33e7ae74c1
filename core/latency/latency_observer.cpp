#include "core/latency/latency_observer.h"

#include <linux/userfaultfd.h>

namespace uffdlazy {

FaultRecord LatencyObserver::make_record(uint64_t read_ns, uint64_t done_ns, uint32_t tid, uint64_t address,
                                         bool write, uint32_t region_id, Resolution resolution, uint32_t pages) {
  FaultRecord r;
  r.timestamp_ns = read_ns;
  r.latency_ns = done_ns > read_ns ? done_ns - read_ns : 0;
  r.address = address;
  r.tid = tid;
  r.region_id = region_id;
  r.pages = pages;
  r.resolution = resolution;
  r.flags = write ? FaultRecord::kWrite : 0;
  r.reserved = 0;
  return r;
}

void LatencyObserver::fault_served(uint64_t read_ns, uint64_t done_ns, uint32_t tid, uint64_t address, bool write,
                                   uint32_t region_id, int resolution, uint32_t pages) {
  Resolution res = resolution >= 0 && size_t(resolution) < kResolutionCount ? Resolution(resolution) : Resolution::kError;
  if (region_id == no_region_id_) region_id = kNoRegion;
  FaultRecord r = make_record(read_ns, done_ns, tid, address, write, region_id, res, pages);
  stats_->record_fault(r);
  if (trace_) trace_->append(r);
}

void LatencyObserver::event_handled(int uffd_event, uint64_t start_ns, uint64_t done_ns) {
  switch (uffd_event) {
    case UFFD_EVENT_REMOVE: stats_->record_event(EventKind::kRemove, start_ns, done_ns); break;
    case UFFD_EVENT_UNMAP: stats_->record_event(EventKind::kUnmap, start_ns, done_ns); break;
    case UFFD_EVENT_REMAP: stats_->record_event(EventKind::kRemap, start_ns, done_ns); break;
    case UFFD_EVENT_FORK: stats_->record_event(EventKind::kFork, start_ns, done_ns); break;
    default: break;
  }
}

}  // namespace uffdlazy
