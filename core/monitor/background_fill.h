// What the monitor does when no fault is waiting: it installs owed snapshot pages before anything
// asks for them, in chunks, and looks for faults between chunks so a waiting thread is served
// first.
//
// In order of priority:
//   1. readahead: the rest of each readahead window a fault opened (see fault_policy.h);
//   2. the working set (UFFDLAZY_PREFETCH=ws or all): the pages a recorded run touched, in the
//      order it first touched them, each with the pages after it that the working set also names
//      (a run that a recorded scan touched in another order still goes in as runs, not page by
//      page; nothing outside the working set is installed early);
//   3. everything else still owed (UFFDLAZY_PREFETCH=all), region by region in address order.
// The same machinery fills every owed data page before a fork (fill_all_data), and the working set
// of a region that was just mapped (fill_working_set) while the thread that mapped it waits.
//
// Chunks adapt as CRIU's lazy-pages daemon does: they drop to kMinChunk pages when a fault arrives
// (fault_seen), and double after kQuietChunks chunks in a row without one, up to kMaxChunk. A
// program that keeps faulting elsewhere (sparse reads while the fill runs) thus waits at most a
// small chunk per fault, and a quiet program gets the fill at full speed. A fault right where the
// fill is working (a scan that caught up with it) leaves the chunks as they are: that program
// wants exactly what the fill is doing, as fast as it can.
//
// Safety: only the monitor thread decides which pages to install (the copy helper only copies
// half of a run the monitor chose, while the monitor waits for it), and it applies every event it
// reads before it installs anything else, so the owed bitmap is the truth: a page the program dropped is never
// owed again and never gets old content. A fill attempted while an event is still unread fails
// with EAGAIN (the kernel's protection); the fill then takes the events in and looks the region
// up again. Runs stop at the first page that is not owed and never pass a region's end; a run
// that crosses a VMA boundary (ENOENT) is retried shorter. A page that cannot be installed now
// (its region is not registered yet, or failed its checksum) stays owed.
//
// Monitor thread only. No memory of its own: the state is a few cursors.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/spin_lock.h"
#include "core/monitor/fault_policy.h"
#include "core/monitor/monitor_counters.h"
#include "core/monitor/page_source.h"
#include "core/monitor/region_table.h"

namespace uffdlazy {

class FaultObserver;

enum class PrefetchMode : uint8_t {
  kNone,        // on demand only (readahead still applies)
  kWorkingSet,  // the recorded working set, then stop
  kAll,         // the working set first (if any), then everything else
};

// What the fill needs from the monitor's loop between chunks.
class FillHost {
 public:
  // Reads what the userfaultfd holds (applying events) and answers the faults read.
  // False: the process is exiting, stop.
  virtual bool take_in() = 0;
  // A fill failed with EAGAIN: an event must be read first. Reads (waiting briefly if nothing
  // has arrived yet) and answers. False: exiting.
  virtual bool take_in_events() = 0;
  [[noreturn]] virtual void fill_failed(const char* what, int err) = 0;

 protected:
  ~FillHost() = default;
};

class BackgroundFill {
 public:
  static constexpr uint32_t kMinChunk = 32;
  static constexpr uint32_t kMaxChunk = 256;
  static constexpr uint32_t kQuietChunks = 4;
  static_assert(kMaxChunk <= FaultPolicy::kStagePages);

  struct Setup {
    FaultPolicy* policy = nullptr;
    RegionTable* table = nullptr;
    SpinLock* table_lock = nullptr;
    PageSource* source = nullptr;  // null: nothing is ever owed, the fill never has work
    MonitorCounters* counters = nullptr;
    FaultObserver* observer = nullptr;
    uint64_t page_size = 4096;
    PrefetchMode mode = PrefetchMode::kNone;
    const SourceRun* working_set = nullptr;  // in first-touch order
    size_t working_set_runs = 0;
    const PageSet* working_set_pages = nullptr;  // the same pages as a set (optional)
  };

  void init(const Setup& s);
  // Serves `source` from now on (null: nothing owed) in `mode`; everything under way is forgotten,
  // and the working set (which names the old source's pages) is not replayed again. Nothing runs
  // until restart().
  void set_source(PageSource* source, PrefetchMode mode);

  // Regions with owed pages may have appeared: start the working set and the sweep over (pages
  // already in place cost a bit test each).
  void restart();
  // Readahead, working set or sweep work is waiting.
  bool has_work() const;
  // A fault arrived: keep the next chunks short.
  void fault_seen(uintptr_t address);
  // Does one chunk of the most urgent work. False: exiting.
  bool step(FillHost& host);

  // The working set of every region mapped now, to the end (chunks, with faults between).
  bool fill_working_set(FillHost& host);
  // Every owed data page of every mapped region, to the end: a forked child (whose memory is not
  // registered) then sees exactly the parent's contents. Stored zero pages need nothing: the
  // child reads zeros there anyway. A corrupt page stops the process.
  bool fill_all_data(FillHost& host, FaultPolicy::CorruptHandler on_corrupt);
  // Every owed page of [start, end), stored zero pages included (in place, as they were when
  // recorded): a range the program takes for itself, which the monitor will not serve again.
  bool fill_owed_in(FillHost& host, uintptr_t start, uintptr_t end, FaultPolicy::CorruptHandler on_corrupt);

  bool working_set_done() const { return ws_done_; }
  bool sweep_done() const { return sweep_done_; }

 private:
  enum class Chunk { kProgress, kRetry, kExiting };

  Chunk readahead_chunk(FillHost& host);
  Chunk working_set_chunk(FillHost& host);
  // One chunk of a sweep in address order from *cursor up to `limit`; *done once past the last
  // region (or the limit).
  Chunk sweep_chunk(FillHost& host, uintptr_t* cursor, bool* done, bool data_only,
                    FaultPolicy::CorruptHandler on_corrupt, uintptr_t limit = UINTPTR_MAX);
  // Sweeps [start, end) to the end, with faults answered between chunks.
  bool fill_to_the_end(FillHost& host, uintptr_t start, uintptr_t end, bool data_only,
                       FaultPolicy::CorruptHandler on_corrupt);
  // What a failed install means for the loop: kRetry after reading events, kExiting, or a fatal.
  Chunk after_failure(FillHost& host, const RunResult& r);
  // The live region holding page `page` of source region `source`. If none, *next is the smallest
  // source page after `page` that a live region holds (or UINT64_MAX).
  bool find_source_page(int32_t source, uint64_t page, Region* out, uint64_t* next);
  void count(const RunResult& r, bool prefetch);
  void grow_chunk() {
    if (++quiet_ < kQuietChunks) return;
    quiet_ = 0;
    chunk_ = chunk_ >= kMaxChunk / 2 ? kMaxChunk : chunk_ * 2;
  }

  Setup s_;
  uint32_t chunk_ = kMinChunk;
  uint32_t quiet_ = 0;  // chunks since the last fault (or the last growth)
  size_t ws_index_ = 0;     // working-set run
  uint64_t ws_offset_ = 0;  // page within it
  bool ws_done_ = true;
  uintptr_t sweep_cursor_ = 0;
  bool sweep_done_ = true;
  uintptr_t cached_start_ = 0;  // where the region find_source_page last found starts
};

}  // namespace uffdlazy
