// The one-line account printed at exit with UFFDLAZY_STATS=1.
#pragma once

#include "core/latency/fault_stats.h"
#include "core/monitor/monitor_counters.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {

void write_exit_summary(const MonitorCounters& c, const FaultStats& stats, bool active, UffdOrigin origin,
                        int fd);

}  // namespace uffdlazy
