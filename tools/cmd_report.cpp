// uffdlazy report FILE.json: a fault report as readable text.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/commands.h"
#include "tools/option_parser.h"
#include "tools/report_model.h"

namespace uffdlazy::cli {

namespace {

using report::Histogram;
using report::Report;

std::string us(uint64_t ns) {
  char b[32];
  double v = double(ns) / 1000.0;
  if (v < 10) std::snprintf(b, sizeof b, "%.2f", v);
  else if (v < 1000) std::snprintf(b, sizeof b, "%.1f", v);
  else std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

void table_header(const char* first) {
  std::printf("  %-18s %10s %9s %9s %9s %9s %9s %9s %9s\n", first, "count", "mean", "min", "p50", "p90", "p99",
              "p99.9", "max");
}

void table_row(const std::string& name, const Histogram& h) {
  if (h.count == 0) {
    std::printf("  %-18s %10s\n", name.c_str(), "0");
    return;
  }
  std::printf("  %-18s %10" PRIu64 " %9s %9s %9s %9s %9s %9s %9s\n", name.c_str(), h.count, us(h.mean_ns).c_str(),
              us(h.min_ns).c_str(), us(h.p50_ns).c_str(), us(h.p90_ns).c_str(), us(h.p99_ns).c_str(),
              us(h.p999_ns).c_str(), us(h.max_ns).c_str());
}

std::string size_text(uint64_t bytes) {
  char b[32];
  if (bytes >= (1ull << 30)) std::snprintf(b, sizeof b, "%.1f GiB", double(bytes) / double(1ull << 30));
  else if (bytes >= (1ull << 20)) std::snprintf(b, sizeof b, "%.1f MiB", double(bytes) / double(1ull << 20));
  else if (bytes >= 1024) std::snprintf(b, sizeof b, "%.1f KiB", double(bytes) / 1024.0);
  else std::snprintf(b, sizeof b, "%" PRIu64 " B", bytes);
  return b;
}

void print(Report r) {
  std::sort(r.regions.begin(), r.regions.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::printf("program    %s (pid %" PRIu64 ")\n", r.program.empty() ? "?" : r.program.c_str(), r.pid);
  if (!r.writer.empty()) std::printf("written by uffdlazy %s\n", r.writer.c_str());
  std::printf("duration   %.3f s, page size %" PRIu64 ", clock read ~%" PRIu64 " ns (included in each latency)\n",
              double(r.duration_ns) / 1e9, r.page_size, r.overhead_ns);

  std::printf("\ntotals\n");
  for (const auto& [name, v] : r.totals) {
    std::string label = name;
    for (char& c : label)
      if (c == '_') c = ' ';
    std::printf("  %-20s %12" PRIu64 "\n", label.c_str(), v);
  }

  std::printf("\nfault latency (us)\n");
  table_header("resolution");
  table_row("all", r.latency);
  for (const auto& [name, h] : r.kinds)
    if (h.count) table_row(name, h);

  std::printf("\nper region (us)\n");
  if (r.regions.empty() && r.other_regions.count == 0) {
    std::printf("  (no faults)\n");
  } else {
    std::printf("  %-6s %-16s %10s  %s\n", "id", "start", "length", "label");
    for (const auto& e : r.regions) {
      char start[24] = "?";
      if (e.described) std::snprintf(start, sizeof start, "0x%" PRIx64, e.start);
      std::printf("  %-6" PRIu64 " %-16s %10s  %s\n", e.id, start, e.described ? size_text(e.length).c_str() : "?",
                  e.label.c_str());
    }
    table_header("region");
    for (const auto& e : r.regions) table_row("#" + std::to_string(e.id), e.latency);
    if (r.other_regions.count) table_row("other", r.other_regions);
  }

  std::printf("\nevents (us)\n");
  table_header("event");
  for (const auto& [name, h] : r.events) table_row(name, h);

  if (!r.timeline_faults.empty()) {
    uint64_t peak = 0;
    size_t peak_i = 0;
    for (size_t i = 0; i < r.timeline_faults.size(); i++)
      if (r.timeline_faults[i] > peak) peak = r.timeline_faults[i], peak_i = i;
    std::printf("\nfaults over time: %zu intervals of %.3f ms; peak %" PRIu64 " at %.3f s\n", r.timeline_faults.size(),
                double(r.timeline_interval_ns) / 1e6, peak, double(peak_i * r.timeline_interval_ns) / 1e9);
  }
  if (r.trace) {
    std::printf("\ntrace      %s: %" PRIu64 " records", r.trace->path.c_str(), r.trace->records);
    if (r.trace->dropped)
      std::printf(", %" PRIu64 " later faults dropped (capacity %" PRIu64 ")", r.trace->dropped, r.trace->capacity);
    std::printf("\n");
  }
}

int report_command(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(report_verb, argc, argv, &args); rc != kParsed) return rc;
  const char* path = args.operands[0].c_str();
  Report r;
  std::string err;
  if (!report::load_report(path, &r, &err)) {
    std::fprintf(stderr, "uffdlazy report: %s\n", err.c_str());
    return 2;
  }
  print(r);
  return 0;
}

}  // namespace

const VerbSpec report_verb = {
    .name = "report",
    .summary = "print the summary of a JSON fault report",
    .synopsis = "FILE.json",
    .description =
        "Prints a fault report (written by --report or UFFDLAZY_REPORT) as text: the program and the "
        "uffdlazy version that wrote it, the totals, fault latency percentiles overall and per resolution "
        "kind, per region, the events (remove, unmap, remap, fork) and the busiest moment of the run. The "
        "format is described in REPORT_FORMAT.md.",
    .options = {},
    .operand = "FILE.json",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kFile,
    .exit_status = "0    printed\n"
                   "2    a usage error, or a file that is not a fault report this build reads",
    .example = "uffdlazy run --report run.json -- ./app && uffdlazy report run.json",
    .run = report_command,
};

}  // namespace uffdlazy::cli
