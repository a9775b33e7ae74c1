// The share of the program's anonymous memory that the shim registered, measured at exit.
#pragma once

#include <cstdint>

namespace uffdlazy::pager {

struct SeenShare {
  uint64_t registered_kb = 0;  // resident anonymous memory in ranges registered with the userfaultfd
  uint64_t anonymous_kb = 0;   // resident anonymous memory of the program (the shim's own left out)
  bool valid = false;
  // Tenths of a percent (973 = 97.3%).
  uint64_t permille() const { return anonymous_kb ? (registered_kb * 1000 + anonymous_kb / 2) / anonymous_kb : 0; }
};

// Reads /proc/thread-self/smaps: `Anonymous:` of every mapping, and of those whose VmFlags carry `um`
// (registered for missing-page faults). The shim's own memory (aside mappings, its .data/.bss, the
// code pages it patched) counts in neither.
SeenShare measure_seen_share();

}  // namespace uffdlazy::pager
