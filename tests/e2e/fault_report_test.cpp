// The fault report a user asks for with UFFDLAZY_REPORT / UFFDLAZY_TRACE matches, exactly, the
// faults a test program provoked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/e2e/process_runner.h"
#include "tools/report_model.h"

namespace uffdlazy::test {
namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/uffdlazy-test-" + std::to_string(getpid()) + "-" + name;
}

TEST(FaultReport, CountsEqualTheFaultsTheProgramProvoked) {
  const std::string json = temp_path("report.json"), trace = temp_path("trace.bin"), csv = temp_path("trace.csv");
  RunOptions opt;
  opt.with_shim = true;
  // One page per fault, so every first touch is one fault: 300 pages read first (zero page), then
  // written (a copy-on-write the kernel handles alone). The minimum size keeps the brk heap (stdio's
  // buffers, 132 KiB here) unregistered, so the 300 pages of the one 1.2 MB mapping are all there is.
  opt.env = {{"UFFDLAZY_STRICT", "1"}, {"UFFDLAZY_FAULT_AROUND", "1"}, {"UFFDLAZY_REPORT", json},
             {"UFFDLAZY_TRACE", trace}, {"UFFDLAZY_MIN_SIZE", "256K"}};
  ProcessResult r = run_process({target_path("memory_rules"), "touch", "300"}, opt);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  report::Report rep;
  std::string error;
  ASSERT_TRUE(report::load_report(json, &rep, &error)) << error;
  EXPECT_EQ(rep.version, 1u);
  EXPECT_EQ(rep.page_size, uint64_t(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(rep.total("faults"), 300u);
  EXPECT_EQ(rep.total("pages_served"), 300u);
  EXPECT_EQ(rep.total("zero_pages"), 300u);
  EXPECT_EQ(rep.total("snapshot_pages"), 0u);
  EXPECT_EQ(rep.latency.count, 300u);
  ASSERT_EQ(rep.regions.size(), 1u);
  EXPECT_EQ(rep.regions[0].length, 300u * uint64_t(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(rep.regions[0].latency.count, 300u);
  ASSERT_TRUE(rep.trace.has_value());
  EXPECT_EQ(rep.trace->records, 300u);

  // The trace exports one CSV row per fault, plus the header.
  ProcessResult t = run_process({cli_path(), "trace", trace, "--format", "csv", "-o", csv});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  FILE* f = std::fopen(csv.c_str(), "r");
  ASSERT_NE(f, nullptr);
  int lines = 0;
  for (int c; (c = std::fgetc(f)) != EOF;) lines += c == '\n';
  std::fclose(f);
  EXPECT_EQ(lines, 301);
  std::remove(json.c_str());
  std::remove(trace.c_str());
  std::remove(csv.c_str());
}

}  // namespace
}  // namespace uffdlazy::test
