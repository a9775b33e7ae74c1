// A fault report ("uffdlazy-report" v1) loaded from JSON into plain structs, validated on the way:
// the schema name and version, and every field the report, plot and tests rely on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace uffdlazy::report {

struct Histogram {
  struct Bucket {
    uint64_t lower_ns, upper_ns, count;
  };
  uint64_t count = 0, sum_ns = 0, mean_ns = 0, min_ns = 0;
  uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
  std::vector<Bucket> buckets;
};

struct RegionEntry {
  uint64_t id = 0;
  bool described = false;  // start/length known (the region was registered)
  uint64_t start = 0, length = 0;
  std::string label;
  Histogram latency;
};

struct Report {
  uint64_t version = 0;
  std::string program;
  std::string writer;  // "0.1.0 (commit)": the uffdlazy that wrote it; empty in older reports
  uint64_t pid = 0, start_ns = 0, end_ns = 0, duration_ns = 0, page_size = 0, overhead_ns = 0;
  std::vector<std::pair<std::string, uint64_t>> totals;  // in file order
  Histogram latency;
  std::vector<std::pair<std::string, Histogram>> kinds;
  std::vector<RegionEntry> regions;
  Histogram other_regions;
  std::vector<std::pair<std::string, Histogram>> events;
  uint64_t timeline_start_ns = 0, timeline_interval_ns = 0;
  std::vector<uint64_t> timeline_faults;
  struct Trace {
    std::string path;
    uint64_t records = 0, dropped = 0, capacity = 0;
  };
  std::optional<Trace> trace;

  uint64_t total(const std::string& name) const;  // 0 if absent
};

// Reads and validates `path`. On failure returns false with a one-line reason in *error.
bool load_report(const std::string& path, Report* out, std::string* error);
bool parse_report(const std::string& text, Report* out, std::string* error);

}  // namespace uffdlazy::report
