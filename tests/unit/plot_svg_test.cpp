// `uffdlazy plot`: every series of the latency CDF stays visible. A kind that holds nearly every
// fault has the same curve as "all faults" and must not vanish under it; a kind with a single
// fault must not be drawn as a full-height vertical line. Checked on the SVG's structure: the
// series' groups, their draw order, their widths and shapes.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "core/latency/json_report_writer.h"
#include "core/latency/latency_observer.h"

namespace uffdlazy {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The text of <g id="ID"> ... </g>, or "".
std::string group(const std::string& svg, const std::string& id) {
  const size_t at = svg.find("<g id=\"" + id + "\">");
  if (at == std::string::npos) return "";
  return svg.substr(at, svg.find("</g>", at) - at);
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) n++;
  return n;
}

TEST(PlotSvg, AKindUnderAllFaultsStaysVisibleAndASingleFaultIsAPoint) {
  const std::string dir = std::string(::testing::TempDir()) + "/plot_svg." + std::to_string(getpid());
  ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
  auto stats = std::make_unique<FaultStats>();
  const uint64_t t0 = 1'000'000'000;
  stats->start(t0);
  stats->region_registered(1, 0x7f0000000000ull, 1 << 22, "heap");
  // 300 faults served from the snapshot (nearly all: their curve is all's), one zero page.
  for (uint64_t i = 0; i < 301; i++) {
    const Resolution r = i == 150 ? Resolution::kZero : Resolution::kSnapshotPage;
    stats->record_fault(LatencyObserver::make_record(t0 + i * 10'000, t0 + i * 10'000 + 2000 + (i * 53) % 30000, 7,
                                                     0x7f0000000000ull + i * 4096, 0, 1, r, 1));
  }
  ReportMeta meta;
  meta.pid = 7;
  meta.program = "/usr/bin/prog";
  meta.end_ns = t0 + 10'000'000;
  const std::string report = dir + "/r.json", svg_path = dir + "/r.svg";
  ASSERT_EQ(write_json_report(report.c_str(), *stats, meta), 0);
  const int st = system((std::string(UFFDLAZY_CLI) + " plot " + report + " -o " + svg_path).c_str());
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  const std::string svg = slurp(svg_path);

  const std::string all = group(svg, "cdf-all"), snapshot = group(svg, "cdf-snapshot_page"), zero = group(svg, "cdf-zero");
  ASSERT_FALSE(all.empty()) << svg;
  ASSERT_FALSE(snapshot.empty()) << svg;
  ASSERT_FALSE(zero.empty()) << svg;
  // "all" is drawn first, as a band wider than the kinds' lines, which are drawn over it: where a
  // kind's curve is all's, both show.
  EXPECT_LT(svg.find("<g id=\"cdf-all\">"), svg.find("<g id=\"cdf-snapshot_page\">"));
  EXPECT_NE(all.find("<polyline"), std::string::npos);
  EXPECT_NE(all.find("stroke-width=\"7\""), std::string::npos) << all;
  EXPECT_NE(snapshot.find("<polyline"), std::string::npos);
  EXPECT_NE(snapshot.find("stroke-width=\"2\""), std::string::npos) << snapshot;
  // One fault: one point, no line.
  EXPECT_EQ(count(zero, "<circle"), 1u) << zero;
  EXPECT_EQ(count(zero, "<polyline"), 0u) << zero;
  EXPECT_EQ(count(zero, "<line"), 0u) << zero;
  (void)system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace uffdlazy
