// Writes a FaultStats account as the JSON report ("uffdlazy-report" version 1, described in
// REPORT_FORMAT.md). Raw syscalls and a fixed buffer only, so it can run at exit inside the
// target, from any thread, while the monitor may still be recording.
#pragma once

#include <cstdint>

#include "core/latency/fault_stats.h"
#include "core/latency/fault_trace.h"

namespace uffdlazy {

constexpr const char* kReportSchema = "uffdlazy-report";
constexpr uint64_t kReportVersion = 1;

struct ReportMeta {
  uint32_t pid = 0;
  const char* program = nullptr;    // executable path or argv[0]
  uint64_t start_ns = 0;            // CLOCK_MONOTONIC; 0: the stats' start
  uint64_t end_ns = 0;              // 0: now
  uint64_t page_size = 4096;
  uint64_t measurement_overhead_ns = UINT64_MAX;  // UINT64_MAX: measured while writing
  const FaultTrace* trace = nullptr;  // optional: its record/dropped counts go in the report
  const char* trace_path = nullptr;
};

// Creates or truncates `path` (mode 0644). Returns 0 or -errno.
int write_json_report(const char* path, const FaultStats& stats, const ReportMeta& meta);
int write_json_report_fd(int fd, const FaultStats& stats, const ReportMeta& meta);

}  // namespace uffdlazy
