// The whole latency account of one process: every number the report, the plot and the stats
// line are made of. All fixed size (~400 KiB, mostly histograms) with no constructor work, so
// it can be a zero-initialised global; nothing here allocates or locks.
//
// Writers: record_fault() and record_event() for remove/unmap/remap run on the monitor thread;
// record_event(kFork) may come from any thread (its histogram uses atomic RMW); describe_region()
// from whichever thread registers a region. Readers (report, stats line) may run at any time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/latency/fault_record.h"
#include "core/latency/fault_timeline.h"
#include "core/latency/latency_histogram.h"
#include "core/latency/region_slots.h"

namespace uffdlazy {

enum class EventKind : uint8_t { kRemove = 0, kUnmap = 1, kRemap = 2, kFork = 3 };
constexpr size_t kEventKindCount = 4;
const char* event_name(EventKind k);

class FaultStats {
 public:
  struct Totals {
    std::atomic<uint64_t> faults{0};
    std::atomic<uint64_t> pages_served{0};
    std::atomic<uint64_t> zero_pages{0};
    std::atomic<uint64_t> snapshot_pages{0};   // includes duplicates
    std::atomic<uint64_t> duplicates{0};
    std::atomic<uint64_t> already_present{0};  // EEXIST
    std::atomic<uint64_t> unmapped{0};         // ENOENT
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> regions_registered{0};
    std::atomic<uint64_t> readahead_pages{0};   // snapshot pages installed beyond the faulting page
    std::atomic<uint64_t> prefetched_pages{0};  // pages the background fill installed, unasked
  };

  // Sets the time origin of the run (for the timeline and the report). Does not clear.
  void start(uint64_t now_ns) {
    start_ns_ = now_ns;
    timeline_.start(now_ns);
  }
  void reset();

  void record_fault(const FaultRecord& r) {
    const size_t kind = size_t(r.resolution) < kResolutionCount ? size_t(r.resolution) : size_t(Resolution::kError);
    overall_.record(r.latency_ns);
    by_kind_[kind].record(r.latency_ns);
    by_region_[regions_.slot_for(r.region_id)].record(r.latency_ns);
    timeline_.record(r.timestamp_ns);
    bump(totals_.faults, 1);
    bump(totals_.pages_served, r.pages);
    switch (Resolution(kind)) {
      case Resolution::kSnapshotPage: bump(totals_.snapshot_pages, r.pages); break;
      case Resolution::kDuplicate:
        bump(totals_.snapshot_pages, r.pages);
        bump(totals_.duplicates, 1);
        break;
      case Resolution::kZero: bump(totals_.zero_pages, r.pages); break;
      case Resolution::kAlreadyPresent: bump(totals_.already_present, 1); break;
      case Resolution::kUnmapped: bump(totals_.unmapped, 1); break;
      case Resolution::kError: bump(totals_.errors, 1); break;
    }
  }

  // Pages installed without a fault of their own: readahead (with a fault, or right after it) or
  // the background fill.
  void record_ahead(bool prefetch, uint64_t pages) { bump(prefetch ? totals_.prefetched_pages : totals_.readahead_pages, pages); }

  void record_event(EventKind k, uint64_t start_ns, uint64_t done_ns) {
    const size_t i = size_t(k) < kEventKindCount ? size_t(k) : 0;
    events_[i].record_shared(done_ns > start_ns ? done_ns - start_ns : 0);
  }

  // A region was registered with userfaultfd: counts it and remembers it for the report.
  void region_registered(uint32_t id, uint64_t start, uint64_t length, const char* label) {
    totals_.regions_registered.fetch_add(1, std::memory_order_relaxed);
    regions_.describe(id, start, length, label);
  }

  uint64_t start_ns() const { return start_ns_; }
  const Totals& totals() const { return totals_; }
  const LatencyHistogram& overall() const { return overall_; }
  const LatencyHistogram& by_kind(Resolution r) const { return by_kind_[size_t(r)]; }
  // Slots 0..regions().used()-1 belong to regions().slot_region(s); RegionSlots::kOther pools the rest.
  const LatencyHistogram& by_region_slot(uint32_t slot) const { return by_region_[slot]; }
  const RegionSlots& regions() const { return regions_; }
  const LatencyHistogram& event(EventKind k) const { return events_[size_t(k)]; }
  const FaultTimeline& timeline() const { return timeline_; }

 private:
  static void bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  uint64_t start_ns_ = 0;
  Totals totals_;
  LatencyHistogram overall_;
  LatencyHistogram by_kind_[kResolutionCount];
  LatencyHistogram by_region_[RegionSlots::kTracked + 1];
  LatencyHistogram events_[kEventKindCount];
  RegionSlots regions_;
  FaultTimeline timeline_;
};

}  // namespace uffdlazy
