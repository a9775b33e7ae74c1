// The pager's process-wide state, shared by the files that implement lazy_pager.h:
//   pager_startup.cpp    configuration, bring-up, fail-open
//   mapping_events.cpp   what the program's mmap/munmap/mremap/madvise mean for the table
//   fork_handling.cpp    fork, in parent and child
//   recording.cpp        the snapshot capture
//   exit_outputs.cpp     the summary line, the restore account, the report and trace at exit
//   heap_events.cpp      the program break: the brk heap registered as it grows
//   existing_memory.cpp  memory that existed before the shim saw it mapped (.bss, initial heap)
//   seen_share.cpp       the share of the program's anonymous memory the shim registered
//   program_claims.cpp   ranges the program takes for itself (its own userfaultfd, locked memory,
//                        its own memory read through /proc/self/mem)
// Internal to core/pager.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/base/blocked_section.h"
#include "core/base/env_config.h"
#include "core/base/high_fd.h"
#include "core/base/immortal.h"
#include "core/base/program_end_watch.h"
#include "core/base/spin_lock.h"
#include "core/latency/fault_stats.h"
#include "core/latency/fault_trace.h"
#include "core/latency/latency_observer.h"
#include "core/monitor/monitor.h"
#include "core/monitor/region_table.h"
#include "core/pager/call_site_table.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/capture_trigger.h"
#include "core/pager/run_state.h"
#include "core/pager/snapshot_restore.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy::pager {

inline constexpr size_t kLiveRegions = 1 << 16;
inline constexpr size_t kLimboRegions = 1 << 10;

struct PagerState {
  Config cfg;
  Userfaultfd uffd;
  RegionTable table;
  SpinLock lock;
  Monitor monitor;
  // Ends the process once the program's last thread has left without exit() (program_end_watch.h).
  ProgramEndWatch end_watch;
  MonitorCounters counters;
  uint64_t page_size = 4096;
  long owner_pid = 0;
  // A private copy of stderr for the lines printed at exit: programs may close fd 2 before then,
  // or close our copy and reuse its number for a file of their own.
  FdIdentity summary;
  // The snapshot file the monitor reads from, as the process's table had it at bring-up: a monitor
  // started again (see before_lone_thread_call) takes it from there only if it is still that file.
  FdIdentity source_file;
  std::atomic<bool> active{false};
  // The program closed our userfaultfd's number: registrations already made keep being served by
  // the monitor (it holds its own reference), new mappings are left to the kernel.
  std::atomic<bool> descriptor_lost{false};
  bool forked = false;  // a child of fork(): serves its memory, owns none of the parent's outputs
  bool strict_asked = false;  // UFFDLAZY_STRICT as the user set it (a restore forces strict mode)
  // Forks under way (between before_fork and after_fork_parent): a region matched meanwhile is
  // filled before its mmap returns, so that no child is ever cloned with pages still owed.
  std::atomic<int> forks_in_progress{0};
  // The other processes of this run (wrappers, the programs they start): see run_state.h.
  RunState run;
  uint32_t captures_written = 0;  // snapshots this process wrote
  uint32_t captures_failed = 0;
  bool configured = false;
  const char* interception = "symbols";  // how the front end learns of mappings (summary line)
  // The shim's own memory outside its aside mappings (see note_own_memory).
  static constexpr size_t kOwnRanges = 16;
  AddressRange own[kOwnRanges] = {};
  size_t own_count = 0;
  // The C library's code (see note_allocator_code).
  static constexpr size_t kAllocatorRanges = 4;
  AddressRange allocator_code[kAllocatorRanges] = {};
  size_t allocator_code_count = 0;
  uintptr_t heap_start = 0;  // where the brk heap starts (start_brk), once read
  // The program took part of the brk heap for itself (program_claims.cpp): its growth is left to
  // the kernel too, rather than registering the heap again.
  std::atomic<bool> heap_aside{false};
  // mlockall(MCL_FUTURE) is in effect: every new mapping is locked (and populated by the kernel),
  // so none is registered until munlockall or an mlockall without MCL_FUTURE.
  std::atomic<bool> locked_future{false};
};

extern PagerState g;
// The latency account: fixed size, zero-initialised, written by the monitor thread only.
extern FaultStats g_stats;
extern FaultTrace g_trace;
extern LatencyObserver g_observer;
// Snapshot restore and record: only constructed when asked for.
extern Immortal<CallSiteTable> g_sites;
extern Immortal<SnapshotRestore> g_restore;
extern CaptureMoment g_capture_at;

// True in the process image that started the pager, while it is active.
inline bool mine() { return g.active.load(std::memory_order_acquire) && sys::getpid() == g.owner_pid; }

// Holds the table lock with every signal blocked (see core/base/blocked_section.h).
class TableSection : public BlockedSection {
 public:
  TableSection() : BlockedSection(g.lock) {}
};

// Registers [s, e) (page aligned), memory the program did not map itself (the heap, .bss): a
// region of its own or, when `extend` and a registered region ends at s, that region grown. Never
// matched to a snapshot region. False if it was not registered.
bool register_unmapped_memory(uintptr_t s, uintptr_t e, int prot, bool extend);

// The brk heap (heap_events.cpp): where it starts, and whether [start, end) is large enough to page.
uintptr_t heap_start();
bool heap_big_enough(uintptr_t end);

// Brings up the userfaultfd and the monitor; false (with the line printed) if that cannot be done.
bool bring_up();
// Takes the snapshot now (from the capture thread, or at exit).
void capture_now();
// Returns once no capture is under way: the exit account must count a capture that the trigger
// thread started before the program ended (the program may end the moment the file appears).
void wait_for_capture_under_way();
// The fd our exit lines go to, or -1 (see exit_outputs.cpp).
int exit_line_fd();
// Every program thread has left without exit(): writes the exit-time outputs as at_exit() does and
// ends the process with `wait_status`, the status it would have had without the shim. Runs on the
// end watch's thread; never returns.
[[noreturn]] void program_ended(int wait_status);

}  // namespace uffdlazy::pager
