// The one-line summary UFFDLAZY_STATS prints on stderr at exit:
//   uffdlazy: faults=N pages=N zero=N snapshot=N present=N regions=N remove=N unmap=N remap=N
//   fork=N p50=1.23us p99=45.6us max=789us
// (one line; latencies in microseconds with up to two decimals).
#pragma once

#include "core/base/line_writer.h"
#include "core/latency/fault_stats.h"

namespace uffdlazy {

// Clears `out` and formats the line into it; the caller emits it (out->emit(2)).
void format_stats_line(const FaultStats& stats, LineWriter* out);

// Appends ns as microseconds: 2 decimals below 10 us, 1 below 1 ms, none above.
void append_us(LineWriter* out, uint64_t ns);

}  // namespace uffdlazy
