// Fuzzes the binary fault trace reader, and names every record as `uffdlazy trace` does.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/latency/fault_record.h"
#include "tests/fuzz/fuzz_budget.h"
#include "tools/trace_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uffdlazy::fuzz::InputBudget budget;
  uffdlazy::report::TraceData trace;
  std::string error;
  if (!uffdlazy::report::parse_trace(std::string_view(reinterpret_cast<const char*>(data), size), &trace, &error)) {
    if (error.empty()) __builtin_trap();
    return 0;
  }
  if (trace.records.size() != trace.header.count) __builtin_trap();
  size_t names = 0;
  for (const uffdlazy::FaultRecord& r : trace.records) names += std::strlen(uffdlazy::resolution_name(r.resolution));
  if (trace.records.size() && !names) __builtin_trap();
  return 0;
}
