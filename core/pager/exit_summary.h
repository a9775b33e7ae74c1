// The one-line account printed at exit with UFFDLAZY_STATS=1.
#pragma once

#include "core/latency/fault_stats.h"
#include "core/monitor/monitor_counters.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {

// interception: "libc" or "symbols"; seen_permille: the share of the program's anonymous memory
// registered, in tenths of a percent, or -1 when unknown; program: this is the process the
// uffdlazy command started (its line is marked, among those of a wrapper's other processes).
void write_exit_summary(const MonitorCounters& c, const FaultStats& stats, bool active, UffdOrigin origin,
                        const char* interception, int64_t seen_permille, bool program, int fd);

}  // namespace uffdlazy
