// Capturing the process's registered memory into a snapshot file.
//
// The image is taken by a child cloned at the capture point: it holds a copy-on-write copy of
// the whole address space as of that instant, so it is consistent even while the program's
// threads keep writing, and the program is paused only for the clone itself. The child writes
// the file (temporary name, fsync, rename) and exits; memory use is the writer's buffers,
// independent of the snapshot's size. Pages a restore still owes are taken from the source
// snapshot, not from memory, so a capture of a partially restored process is complete.
#pragma once

#include <cstdint>

#include "core/base/spin_lock.h"
#include "core/monitor/region_table.h"
#include "core/pager/call_site_table.h"
#include "core/pager/snapshot_restore.h"

namespace uffdlazy {

struct CaptureInput {
  RegionTable* table = nullptr;
  SpinLock* table_lock = nullptr;
  const CallSiteTable* sites = nullptr;
  const SnapshotRestore* restore = nullptr;  // may be null
  uint64_t page_size = 4096;
  bool no_aslr = false;
  int message_fd = 2;
};

// Clones the writer child. Returns its pid, or -errno if it could not be started. The caller
// waits for it (wait_capture) or lets it run.
long start_capture(const char* path, const CaptureInput& in);
// Waits for the child; returns its wait status (WIFEXITED and 0: the file is complete; the child
// said why otherwise, unless it was killed), or -errno.
int wait_capture(long pid);

}  // namespace uffdlazy
