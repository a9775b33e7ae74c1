// How fast a restore fills memory: readahead, the background fill (UFFDLAZY_PREFETCH), and the
// working set, replayed (UFFDLAZY_WS) or recorded (UFFDLAZY_WS_RECORD). Internal to core/pager.
#pragma once

#include "core/base/line_writer.h"
#include "core/monitor/monitor.h"

namespace uffdlazy::pager {

// After the snapshot is open: opens the working set to replay (refusing one recorded from another
// snapshot) and maps the log of a working set to record. False with the problem (starting with
// the file's name) in err.
bool prepare_restore_prefetch(LineWriter* err);
// The restore part of the monitor's setup.
void configure_restore_prefetch(Monitor::Setup* setup);
// A region restored from snapshot region `source` was registered (see Monitor::region_restored).
void region_restored(int32_t source);
// At exit: writes the recorded working set and says so on `fd` (-1: nowhere).
void write_working_set_at_exit(int fd);

}  // namespace uffdlazy::pager
