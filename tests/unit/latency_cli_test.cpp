#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "core/latency/json_report_writer.h"
#include "core/latency/latency_observer.h"
#include "tools/report_json.h"

namespace uffdlazy {
namespace {

struct CliResult {
  int code;
  std::string out;
};

CliResult run_cli(const std::string& args) {
  std::string cmd = std::string(UFFDLAZY_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) n++;
  return n;
}

class LatencyCli : public ::testing::Test {
 protected:
  static constexpr uint64_t kFaults = 500;
  static constexpr uint64_t kKept = 300;

  void SetUp() override {
    dir_ = std::string(::testing::TempDir()) + "/latency_cli." + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    auto s = std::make_unique<FaultStats>();
    FaultTrace trace;
    ASSERT_EQ(trace.init(kKept), 0);
    const uint64_t t0 = 1'000'000'000;
    s->start(t0);
    s->region_registered(1, 0x7f0000000000ull, 1 << 22, "heap");
    for (uint64_t i = 0; i < kFaults; i++) {
      Resolution r = i % 10 == 0 ? Resolution::kZero : i % 17 == 0 ? Resolution::kAlreadyPresent : Resolution::kSnapshotPage;
      FaultRecord rec = LatencyObserver::make_record(t0 + i * 50'000, t0 + i * 50'000 + 1000 + (i * 37) % 20000,
                                                     uint32_t(100 + i % 3), 0x7f0000000000ull + i * 4096, i % 2,
                                                     i % 50 == 0 ? kNoRegion : 1, r, r == Resolution::kAlreadyPresent ? 0 : 1);
      s->record_fault(rec);
      trace.append(rec);
    }
    s->record_event(EventKind::kRemove, 0, 4000);
    ReportMeta m;
    m.pid = 4321;
    m.program = "/usr/bin/testprog";
    m.end_ns = t0 + kFaults * 50'000 + 10'000'000;
    m.trace = &trace;
    m.trace_path = "trace.bin";
    report_ = dir_ + "/report.json";
    trace_ = dir_ + "/trace.bin";
    ASSERT_EQ(write_json_report(report_.c_str(), *s, m), 0);
    ASSERT_EQ(trace.write_file(trace_.c_str(), 4321, t0, 4096), 0);
  }
  void TearDown() override { (void)system(("rm -rf " + dir_).c_str()); }

  std::string dir_, report_, trace_;
};

TEST_F(LatencyCli, ReportPrintsTheSummary) {
  CliResult r = run_cli("report " + report_);
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* part : {"/usr/bin/testprog", "pid 4321", "faults", "500", "snapshot_page", "already_present",
                           "p99.9", "heap", "other", "remove", "300 records", "200 later faults dropped"})
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
}

TEST_F(LatencyCli, ReportRejectsBadInput) {
  EXPECT_EQ(run_cli("report " + dir_ + "/missing.json").code, 2);
  std::ofstream(dir_ + "/wrong.json") << "{\"schema\":\"other\",\"version\":1}";
  CliResult wrong = run_cli("report " + dir_ + "/wrong.json");
  EXPECT_EQ(wrong.code, 2);
  EXPECT_NE(wrong.out.find("not a uffdlazy report"), std::string::npos) << wrong.out;
  std::ofstream(dir_ + "/garbage.json") << "not json";
  EXPECT_EQ(run_cli("report " + dir_ + "/garbage.json").code, 2);
  EXPECT_EQ(run_cli("report").code, 2);
  EXPECT_EQ(run_cli("report " + trace_).code, 2);
}

TEST_F(LatencyCli, PlotWritesBothPanels) {
  std::string svg = dir_ + "/plot.svg";
  CliResult r = run_cli("plot " + report_ + " -o " + svg);
  ASSERT_EQ(r.code, 0) << r.out;
  std::string text = slurp(svg);
  EXPECT_EQ(text.rfind("<svg", 0), 0u);
  EXPECT_NE(text.find("</svg>"), std::string::npos);
  EXPECT_NE(text.find("id=\"latency-cdf\""), std::string::npos);
  EXPECT_NE(text.find("id=\"faults-over-time\""), std::string::npos);
  EXPECT_NE(text.find("snapshot_page"), std::string::npos);
  EXPECT_NE(text.find("<polyline"), std::string::npos);
  EXPECT_EQ(count_of(text, "<g "), count_of(text, "</g>"));
  EXPECT_EQ(count_of(text, "<text"), count_of(text, "</text>"));
  EXPECT_EQ(run_cli("plot " + report_).code, 2);  // no -o
  EXPECT_EQ(run_cli("plot " + dir_ + "/missing.json -o " + svg).code, 2);
}

TEST_F(LatencyCli, TraceAsCsv) {
  std::string csv = dir_ + "/trace.csv";
  CliResult r = run_cli("trace " + trace_ + " --format csv -o " + csv);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("dropped"), std::string::npos) << r.out;
  std::string text = slurp(csv);
  EXPECT_EQ(text.rfind("timestamp_ns,", 0), 0u);
  EXPECT_EQ(count_of(text, "\n"), kKept + 1);
  EXPECT_NE(text.find(",snapshot_page,1\n"), std::string::npos);
  EXPECT_NE(text.find(",0x7f0000000000,"), std::string::npos);
}

TEST_F(LatencyCli, TraceAsChromeJson) {
  std::string out = dir_ + "/trace.json";
  CliResult r = run_cli("trace " + trace_ + " --format chrome -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  std::string json = slurp(out);
  std::string err;
  auto doc = report::parse_json(json, &err);
  ASSERT_TRUE(doc) << err;
  const auto* events = doc->find("traceEvents");
  ASSERT_TRUE(events && events->is_array());
  size_t complete = 0;
  for (const auto& e : events->items) {
    if (e.find("ph")->string != "X") continue;
    complete++;
    EXPECT_TRUE(e.find("ts")->is_number());
    EXPECT_TRUE(e.find("dur")->is_number());
    EXPECT_TRUE(e.find("tid")->is_uint);
    EXPECT_TRUE(e.find("args")->find("address")->is_string());
  }
  EXPECT_EQ(complete, kKept);
  const auto& first = events->items[1];
  EXPECT_EQ(first.find("name")->string, "zero");
  EXPECT_EQ(first.find("tid")->uint, 100u);
  EXPECT_DOUBLE_EQ(first.find("dur")->number, 1.0);
}

TEST_F(LatencyCli, TraceRejectsBadInput) {
  EXPECT_EQ(run_cli("trace " + report_ + " --format csv").code, 2);  // not a trace
  EXPECT_EQ(run_cli("trace " + dir_ + "/missing.bin").code, 2);
  EXPECT_EQ(run_cli("trace " + trace_ + " --format xml").code, 2);
  std::string t = slurp(trace_);
  std::ofstream(dir_ + "/short.bin", std::ios::binary) << t.substr(0, t.size() - 10);
  CliResult r = run_cli("trace " + dir_ + "/short.bin");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace uffdlazy
