// Fuzzes the fault report reader: the JSON parser and the report model built from its tree, as
// `uffdlazy report` and `uffdlazy plot` load a file.
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_budget.h"
#include "tools/report_json.h"
#include "tools/report_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uffdlazy::fuzz::InputBudget budget;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto doc = uffdlazy::report::parse_json(text, &error);
  if (!doc && error.empty()) __builtin_trap();  // every refusal says why
  uffdlazy::report::Report report;
  error.clear();
  if (!uffdlazy::report::parse_report(text, &report, &error) && error.empty()) __builtin_trap();
  if (!doc && error.find("not valid JSON") != 0) __builtin_trap();
  return 0;
}
