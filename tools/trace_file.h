// Reads a binary fault trace (UFFDTRC1, written by core/latency/fault_trace) for the CLI.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/latency/fault_record.h"
#include "core/latency/fault_trace.h"

namespace uffdlazy::report {

struct TraceData {
  TraceFileHeader header;
  std::vector<FaultRecord> records;
};

// Validates magic, version, sizes and length. On failure returns false with a reason in *error.
bool load_trace(const std::string& path, TraceData* out, std::string* error);
// The same for a trace already in memory; the reason does not name a file.
bool parse_trace(std::string_view bytes, TraceData* out, std::string* error);

}  // namespace uffdlazy::report
