#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>

#include "core/latency/json_report_writer.h"
#include "core/latency/latency_observer.h"
#include "tools/report_json.h"
#include "tools/report_model.h"

namespace uffdlazy {
namespace {

std::string temp_path(const char* name) {
  return std::string(::testing::TempDir()) + "/" + name + "." + std::to_string(getpid());
}

void add(FaultStats* s, uint64_t t, uint64_t lat, uint32_t region, Resolution r, uint32_t pages = 1) {
  s->record_fault(LatencyObserver::make_record(t, t + lat, 11, 0x5000, false, region, r, pages));
}

TEST(LatencyReport, RoundTripsExactNumbers) {
  auto s = std::make_unique<FaultStats>();
  const uint64_t t0 = 5'000'000'000ull;
  s->start(t0);
  s->region_registered(3, 0x7f1200000000ull, 1 << 20, "heap \"main\"\n");
  s->region_registered(4, 0x7f1300000000ull, 1 << 16, "stack");
  for (int i = 0; i < 10; i++) add(s.get(), t0 + uint64_t(i) * 1000, 2000, 3, Resolution::kSnapshotPage);
  for (int i = 0; i < 5; i++) add(s.get(), t0 + 3'000'000, 40, 4, Resolution::kZero);
  add(s.get(), t0 + 3'000'000, 60, 9, Resolution::kAlreadyPresent, 0);
  add(s.get(), t0 + 3'000'000, 70, kNoRegion, Resolution::kUnmapped, 0);
  s->record_event(EventKind::kUnmap, 100, 1100);
  s->record_event(EventKind::kUnmap, 100, 3100);

  FaultTrace trace;
  ASSERT_EQ(trace.init(4), 0);
  for (int i = 0; i < 6; i++) trace.append(FaultRecord{});

  ReportMeta m;
  m.pid = 777;
  m.program = "/opt/app \\ \"x\"";
  m.end_ns = t0 + 2'000'000'000ull;
  m.page_size = 4096;
  m.measurement_overhead_ns = 25;
  m.trace = &trace;
  m.trace_path = "/tmp/t.bin";
  std::string path = temp_path("latency_report.json");
  ASSERT_EQ(write_json_report(path.c_str(), *s, m), 0);

  report::Report r;
  std::string err;
  ASSERT_TRUE(report::load_report(path, &r, &err)) << err;
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.pid, 777u);
  EXPECT_EQ(r.program, "/opt/app \\ \"x\"");
  EXPECT_EQ(r.start_ns, t0);
  EXPECT_EQ(r.duration_ns, 2'000'000'000ull);
  EXPECT_EQ(r.page_size, 4096u);
  EXPECT_EQ(r.overhead_ns, 25u);
  EXPECT_EQ(r.total("faults"), 17u);
  EXPECT_EQ(r.total("pages_served"), 15u);
  EXPECT_EQ(r.total("snapshot_pages"), 10u);
  EXPECT_EQ(r.total("zero_pages"), 5u);
  EXPECT_EQ(r.total("already_present"), 1u);
  EXPECT_EQ(r.total("unmapped"), 1u);
  EXPECT_EQ(r.total("regions_registered"), 2u);

  EXPECT_EQ(r.latency.count, 17u);
  EXPECT_EQ(r.latency.sum_ns, 10 * 2000u + 5 * 40u + 60 + 70);
  EXPECT_EQ(r.latency.min_ns, 40u);
  EXPECT_EQ(r.latency.max_ns, 2000u);
  EXPECT_EQ(r.latency.p50_ns, s->overall().value_at_percentile(50));
  uint64_t bucket_total = 0;
  for (const auto& b : r.latency.buckets) {
    EXPECT_LT(b.lower_ns, b.upper_ns);
    bucket_total += b.count;
  }
  EXPECT_EQ(bucket_total, 17u);

  ASSERT_EQ(r.kinds.size(), kResolutionCount);
  EXPECT_EQ(r.kinds[0].first, "snapshot_page");
  EXPECT_EQ(r.kinds[0].second.count, 10u);
  EXPECT_EQ(r.kinds[1].first, "zero");
  EXPECT_EQ(r.kinds[1].second.mean_ns, 40u);
  EXPECT_EQ(r.kinds[1].second.buckets.size(), 1u);

  ASSERT_EQ(r.regions.size(), 3u);  // 3, 4 and the never-registered 9, in first-fault order
  EXPECT_EQ(r.regions[0].id, 3u);
  EXPECT_TRUE(r.regions[0].described);
  EXPECT_EQ(r.regions[0].start, 0x7f1200000000ull);
  EXPECT_EQ(r.regions[0].length, 1u << 20);
  EXPECT_EQ(r.regions[0].label, "heap \"main\"\n");
  EXPECT_EQ(r.regions[0].latency.count, 10u);
  EXPECT_EQ(r.regions[1].latency.count, 5u);
  EXPECT_EQ(r.regions[2].id, 9u);
  EXPECT_FALSE(r.regions[2].described);
  EXPECT_EQ(r.other_regions.count, 1u);

  ASSERT_EQ(r.events.size(), kEventKindCount);
  EXPECT_EQ(r.events[1].first, "unmap");
  EXPECT_EQ(r.events[1].second.count, 2u);
  EXPECT_EQ(r.events[1].second.mean_ns, 2000u);

  EXPECT_EQ(r.timeline_start_ns, t0);
  EXPECT_EQ(r.timeline_interval_ns, s->timeline().interval_ns());
  uint64_t tl_total = 0;
  for (uint64_t c : r.timeline_faults) tl_total += c;
  EXPECT_EQ(tl_total, 17u);
  EXPECT_EQ(r.timeline_faults[0], 10u);

  ASSERT_TRUE(r.trace.has_value());
  EXPECT_EQ(r.trace->records, 4u);
  EXPECT_EQ(r.trace->dropped, 2u);
  EXPECT_EQ(r.trace->path, "/tmp/t.bin");
  std::remove(path.c_str());
}

TEST(LatencyReport, EmptyAccountIsAValidReport) {
  auto s = std::make_unique<FaultStats>();
  std::string path = temp_path("latency_report_empty.json");
  ReportMeta m;
  ASSERT_EQ(write_json_report(path.c_str(), *s, m), 0);
  report::Report r;
  std::string err;
  ASSERT_TRUE(report::load_report(path, &r, &err)) << err;
  EXPECT_EQ(r.latency.count, 0u);
  EXPECT_TRUE(r.regions.empty());
  EXPECT_TRUE(r.timeline_faults.empty());
  EXPECT_FALSE(r.trace.has_value());
  std::remove(path.c_str());
}

TEST(LatencyReport, RejectsOtherSchemasAndVersions) {
  report::Report r;
  std::string err;
  EXPECT_FALSE(report::parse_report("{\"schema\":\"something-else\",\"version\":1}", &r, &err));
  EXPECT_NE(err.find("schema"), std::string::npos) << err;
  EXPECT_FALSE(report::parse_report("{\"schema\":\"uffdlazy-report\",\"version\":2}", &r, &err));
  EXPECT_NE(err.find("version 2"), std::string::npos) << err;
  EXPECT_FALSE(report::parse_report("{\"schema\":\"uffdlazy-report\",\"version\":1}", &r, &err));
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
  EXPECT_FALSE(report::parse_report("[1,2", &r, &err));
  EXPECT_NE(err.find("JSON"), std::string::npos) << err;
  EXPECT_FALSE(report::load_report("/nonexistent/report.json", &r, &err));
  EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
}

TEST(LatencyJson, ParsesValuesAndEscapes) {
  std::string err;
  auto v = report::parse_json(
      R"( {"a": [1, -2, 3.5e2, true, false, null], "s": "x\"\\\/\n\u00e9\ud83d\ude00", "big": 18446744073709551615,
          "o": {}} )",
      &err);
  ASSERT_TRUE(v) << err;
  const auto* a = v->find("a");
  ASSERT_TRUE(a && a->is_array());
  ASSERT_EQ(a->items.size(), 6u);
  EXPECT_TRUE(a->items[0].is_uint);
  EXPECT_FALSE(a->items[1].is_uint);
  EXPECT_EQ(a->items[1].number, -2);
  EXPECT_EQ(a->items[2].number, 350);
  EXPECT_FALSE(a->items[2].is_uint);
  EXPECT_TRUE(a->items[3].boolean);
  EXPECT_TRUE(a->items[5].is_null());
  EXPECT_EQ(v->find("s")->string, "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v->find("big")->uint, UINT64_MAX);
  EXPECT_TRUE(v->find("o")->is_object());
  EXPECT_EQ(v->find("missing"), nullptr);
}

TEST(LatencyJson, ReportsWhereItFailed) {
  std::string err;
  EXPECT_FALSE(report::parse_json("{\n  \"a\": tru\n}", &err));
  EXPECT_EQ(err.rfind("line 2", 0), 0u) << err;
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "01", "1 2", "{\"a\":1,}", "\"\\q\""}) {
    EXPECT_FALSE(report::parse_json(bad, &err)) << bad;
  }
  std::string deep(100, '[');
  EXPECT_FALSE(report::parse_json(deep, &err));
}

}  // namespace
}  // namespace uffdlazy
