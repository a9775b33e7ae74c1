#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/latency/fault_stats.h"
#include "core/latency/latency_observer.h"
#include "core/latency/stats_line.h"

namespace uffdlazy {
namespace {

FaultRecord fault(uint64_t t, uint64_t lat, uint32_t region, Resolution r, uint32_t pages = 1) {
  return LatencyObserver::make_record(t, t + lat, 7, 0x1000, false, region, r, pages);
}

TEST(LatencyStats, FixedSizeAndCheap) {
  EXPECT_LT(sizeof(FaultStats), 512u * 1024);
}

TEST(LatencyStats, CountsByResolution) {
  auto s = std::make_unique<FaultStats>();
  s->start(1000);
  s->record_fault(fault(1000, 5000, 1, Resolution::kSnapshotPage));
  s->record_fault(fault(2000, 7000, 1, Resolution::kDuplicate));
  s->record_fault(fault(3000, 1000, 2, Resolution::kZero));
  s->record_fault(fault(4000, 900, 2, Resolution::kAlreadyPresent, 0));
  s->record_fault(fault(5000, 800, kNoRegion, Resolution::kUnmapped, 0));
  s->record_fault(fault(6000, 100, 3, Resolution::kError, 0));
  const auto& t = s->totals();
  EXPECT_EQ(t.faults.load(), 6u);
  EXPECT_EQ(t.pages_served.load(), 3u);
  EXPECT_EQ(t.snapshot_pages.load(), 2u);
  EXPECT_EQ(t.duplicates.load(), 1u);
  EXPECT_EQ(t.zero_pages.load(), 1u);
  EXPECT_EQ(t.already_present.load(), 1u);
  EXPECT_EQ(t.unmapped.load(), 1u);
  EXPECT_EQ(t.errors.load(), 1u);
  EXPECT_EQ(s->overall().count(), 6u);
  EXPECT_EQ(s->overall().max(), 7000u);
  EXPECT_EQ(s->by_kind(Resolution::kSnapshotPage).count(), 1u);
  EXPECT_EQ(s->by_kind(Resolution::kDuplicate).max(), 7000u);
  EXPECT_EQ(s->by_kind(Resolution::kZero).sum(), 1000u);
  s->reset();
  EXPECT_EQ(s->totals().faults.load(), 0u);
  EXPECT_EQ(s->overall().count(), 0u);
  EXPECT_EQ(s->regions().used(), 0u);
}

TEST(LatencyStats, RegionsBeyondTheTrackedOnesArePooled) {
  auto s = std::make_unique<FaultStats>();
  s->start(0);
  for (uint32_t id = 0; id < RegionSlots::kTracked + 10; id++) {
    s->record_fault(fault(id, 100 + id, id, Resolution::kZero));
    s->record_fault(fault(id, 100 + id, id, Resolution::kZero));
  }
  s->record_fault(fault(0, 5, kNoRegion, Resolution::kZero));
  ASSERT_EQ(s->regions().used(), RegionSlots::kTracked);
  for (uint32_t slot = 0; slot < RegionSlots::kTracked; slot++) {
    EXPECT_EQ(s->regions().slot_region(slot), slot);
    EXPECT_EQ(s->by_region_slot(slot).count(), 2u);
    EXPECT_EQ(s->by_region_slot(slot).min(), 100u + slot);
  }
  EXPECT_EQ(s->by_region_slot(RegionSlots::kOther).count(), 21u);
  // An early region faulting again still finds its own slot.
  s->record_fault(fault(0, 100, 3, Resolution::kZero));
  EXPECT_EQ(s->by_region_slot(3).count(), 3u);
}

TEST(LatencyStats, RegionDescriptions) {
  auto s = std::make_unique<FaultStats>();
  s->region_registered(12, 0x7000, 0x3000, "heap");
  s->region_registered(13, 0x9000, 0x1000, nullptr);
  s->region_registered(12, 0x7000, 0x5000, "a label that is much longer than the forty-eight bytes kept for it");
  EXPECT_EQ(s->totals().regions_registered.load(), 3u);
  const RegionInfo* i = s->regions().info(12);
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->length, 0x5000u);
  EXPECT_EQ(std::string(i->label).size(), RegionInfo::kLabelMax - 1);
  ASSERT_NE(s->regions().info(13), nullptr);
  EXPECT_STREQ(s->regions().info(13)->label, "");
  EXPECT_EQ(s->regions().info(14), nullptr);
  EXPECT_EQ(s->regions().info(kNoRegion), nullptr);
}

TEST(LatencyStats, EventsAreTimed) {
  auto s = std::make_unique<FaultStats>();
  s->record_event(EventKind::kRemove, 100, 400);
  s->record_event(EventKind::kRemove, 100, 200);
  s->record_event(EventKind::kFork, 0, 5000000);
  EXPECT_EQ(s->event(EventKind::kRemove).count(), 2u);
  EXPECT_EQ(s->event(EventKind::kRemove).mean(), 200u);
  EXPECT_EQ(s->event(EventKind::kFork).max(), 5000000u);
  EXPECT_EQ(s->event(EventKind::kUnmap).count(), 0u);
}

TEST(LatencyStats, ObserverMapsMonitorCodes) {
  auto s = std::make_unique<FaultStats>();
  FaultTrace trace;
  ASSERT_EQ(trace.init(8), 0);
  LatencyObserver obs(s.get(), &trace, 0);
  obs.fault_served(100, 600, 9, 0x2000, true, 0, 1, 1);  // zero page, no region (the monitor's 0)
  obs.fault_served(100, 300, 9, 0x3000, false, 4, 3, 0);  // already present
  obs.event_handled(0x15 /* UFFD_EVENT_REMOVE */, 0, 10);
  ASSERT_EQ(trace.count(), 2u);
  EXPECT_EQ(trace.records()[0].region_id, kNoRegion);
  EXPECT_EQ(trace.records()[0].pages, 1u);
  EXPECT_TRUE(trace.records()[0].write());
  EXPECT_EQ(trace.records()[1].resolution, Resolution::kAlreadyPresent);
  EXPECT_EQ(trace.records()[1].pages, 0u);
  EXPECT_EQ(s->totals().zero_pages.load(), 1u);
  EXPECT_EQ(s->event(EventKind::kRemove).count(), 1u);
}

TEST(LatencyTimeline, FoldsWhenTheRunOutgrowsIt) {
  auto tl = std::make_unique<FaultTimeline>();
  tl->start(1000);
  const uint64_t base = tl->interval_ns();
  tl->record(1000);
  tl->record(1000 + base * 3 + 1);
  EXPECT_EQ(tl->used(), 4u);
  EXPECT_EQ(tl->count(3), 1u);
  // Four times the initial span: the interval doubles twice, counts are kept.
  tl->record(1000 + base * FaultTimeline::kSlots * 4 - 1);
  EXPECT_EQ(tl->interval_ns(), base * 4);
  EXPECT_EQ(tl->count(0), 2u);
  EXPECT_EQ(tl->count(FaultTimeline::kSlots - 1), 1u);
  uint64_t total = 0;
  for (size_t i = 0; i < FaultTimeline::kSlots; i++) total += tl->count(i);
  EXPECT_EQ(total, 3u);
  tl->record(10);  // before the origin: counted in the first interval
  EXPECT_EQ(tl->count(0), 3u);
}

TEST(LatencyStatsLine, HasTheDocumentedFields) {
  auto s = std::make_unique<FaultStats>();
  for (int i = 0; i < 100; i++) s->record_fault(fault(0, 1000 * uint64_t(i + 1), 1, Resolution::kSnapshotPage));
  s->region_registered(1, 0, 4096, "x");
  s->record_event(EventKind::kUnmap, 0, 10);
  s->record_event(EventKind::kRemap, 0, 10);
  s->record_event(EventKind::kRemap, 0, 10);
  LineWriter w;
  format_stats_line(*s, &w);
  std::string line(w.data(), w.size());
  EXPECT_EQ(line.rfind("uffdlazy: ", 0), 0u) << line;
  for (const char* part : {"faults=100", "regions=1", "remove=0", "unmap=1", "remap=2", "fork=0", "max=100.0us",
                           "pages=100", "snapshot=100"})
    EXPECT_NE(line.find(part), std::string::npos) << part << " in: " << line;
  // Percentiles carry the histogram's bucket error (<= 1/64).
  auto us_after = [&](const char* key) {
    size_t at = line.find(key);
    EXPECT_NE(at, std::string::npos) << key;
    return at == std::string::npos ? 0.0 : std::stod(line.substr(at + std::string(key).size()));
  };
  EXPECT_NEAR(us_after(" p50="), 50.0, 50.0 / 64);
  EXPECT_NEAR(us_after(" p99="), 99.0, 99.0 / 64);
  EXPECT_NE(line.find("us p99="), std::string::npos);
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(LatencyStatsLine, MicrosecondFormatting) {
  auto fmt = [](uint64_t ns) {
    LineWriter w;
    append_us(&w, ns);
    return std::string(w.data(), w.size());
  };
  EXPECT_EQ(fmt(0), "0.00us");
  EXPECT_EQ(fmt(1234), "1.23us");
  EXPECT_EQ(fmt(9999), "10.00us");
  EXPECT_EQ(fmt(12345), "12.3us");
  EXPECT_EQ(fmt(2500000), "2500us");
}

}  // namespace
}  // namespace uffdlazy
