// How one fault is answered: which pages go in, with what content, in one fill.
//
// The monitor's loop (monitor.cpp) reads faults and events and decides when to answer; this decides
// what the answer is. A page of a region with a source (a snapshot being restored) gets the
// source's content if it is still owed; any other page gets zeros, with fault-around: a zero-filled
// fault installs up to N pages (the faulting page and those after it in the region), as THP does
// for anonymous memory, so a sequential writer pays one round trip per window instead of per page.
//
// Readahead: a fault on an owed snapshot page installs a run of owed pages with one ioctl: the
// faulting page and those after it, as long as each is still owed and of the same kind (data
// blocks contiguous in the file, as the writer lays them out, so one UFFDIO_COPY takes them from
// the file mapping; or stored zero pages, one UFFDIO_ZEROPAGE). The run never passes a page the
// source no longer owes, so a dropped page can never get old content. How far ahead to go is
// adaptive (ReadaheadWindow): the window doubles while faults continue where the last window
// ended, and halves on faults elsewhere. The faulting thread waits only for the first
// kSyncPages; the rest of the window is left to the monitor's background fill
// (background_fill.h), which installs it right after, in chunks, between faults.
//
// Monitor thread only; takes the table lock only to look the region up.
#pragma once

#include <cstdint>

#include "core/base/spin_lock.h"
#include "core/monitor/copy_helper.h"
#include "core/monitor/page_set.h"
#include "core/monitor/page_source.h"
#include "core/monitor/region.h"
#include "core/monitor/region_table.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {

// Resolution codes handed to the FaultObserver: the values of latency's Resolution.
enum FaultResolution { kResSnapshot = 0, kResZero = 1, kResDuplicate = 2, kResPresent = 3, kResGone = 4 };

// The adaptive readahead window: a few sequential streams (threads scanning different ranges each
// keep theirs). Pure bookkeeping on page addresses, no system calls, so it is unit-tested alone.
class ReadaheadWindow {
 public:
  static constexpr uint32_t kStreams = 4;
  // A fault that continues no stream starts one this large, halved on each such fault down to
  // one page (random access), doubled back on each fault that continues a stream.
  static constexpr uint32_t kInitial = 16;

  // max_pages: the cap (UFFDLAZY_READAHEAD); 1 turns readahead off.
  void init(uint32_t max_pages, uint64_t page_size);
  uint32_t max_pages() const { return max_; }

  // A fault on owed page `page` of a region that ends at `region_end`: returns the stream it
  // belongs to (a new one replaces the least recently used) and how many pages, from `page` on,
  // its window now covers (at least 1, never past region_end).
  uint32_t on_fault(uintptr_t page, uintptr_t region_end, uint32_t* pages);
  // Pages up to `to` (exclusive) of stream s are in place or skipped.
  void advanced(uint32_t s, uintptr_t to);
  // Stream s ends at `at`: the next page is no longer owed (or not there): read no further.
  void stop(uint32_t s, uintptr_t at);
  // The most recently used stream with pages still to install: [*from, *end). False if none.
  bool pending(uint32_t* s, uintptr_t* from, uintptr_t* end) const;
  void clear();

 private:
  struct Stream {
    uintptr_t start = 0;  // the fault that opened the current window
    uintptr_t next = 0;   // first page not yet installed by the readahead
    uintptr_t end = 0;    // end of the window (exclusive)
    uint32_t window = 0;  // pages; 0: unused
    uint64_t used = 0;    // recency
  };
  Stream streams_[kStreams];
  uint32_t max_ = 1;
  uint32_t initial_ = kInitial;
  uint64_t page_size_ = 4096;
  uint64_t clock_ = 0;
};

// The outcome of installing a run of owed source pages.
struct RunResult {
  FillResult fill{FillStatus::kDone, 0, 0};
  uint32_t pages = 0;          // pages installed (and consumed)
  int resolution = kResZero;   // kind of the first page: kResSnapshot, kResDuplicate or kResZero
  bool owed = false;           // the first page was owed
  bool corrupt = false;        // the first page failed its checksum or could not be read (only
                               // without a corrupt handler; read_error then holds the errno)
  int read_error = 0;
  bool end_of_owed = false;    // the run stopped at a page the source no longer owes
  bool pending = false;        // the first page's block has not landed (a remote source): nothing
                               // installed, fill.status kNoEntry
};

struct FaultAnswer {
  FillResult fill;
  int resolution = kResZero;
  uint32_t pages = 0;       // pages installed
  uint32_t readahead = 0;   // of those, pages after the faulting page (a snapshot run)
  uint32_t region_id = 0;   // 0: the address is in no region the table knows
  bool sourced = false;     // the page came from (or was owed by) the source
  bool owed = false;        // the source owed the faulting page
  Region region{};          // valid when region_id != 0
  uint64_t source_page = 0;
  bool parked = false;      // the page's block has not landed (a remote source): asked for, nothing
                            // installed; answer the fault again once it lands
};

class FaultPolicy {
 public:
  // The faulting thread waits for at most this many pages of a readahead window; the monitor
  // installs the rest right after, between faults.
  static constexpr uint32_t kSyncPages = 16;
  // A zero run copied for a writer comes from this many zeroed pages.
  static constexpr uint32_t kMaxZeroCopy = 512;
  // Room for the data runs a source copies out before installing them (see PageSource::read_pages).
  static constexpr uint32_t kStagePages = 256;
  // A data run this long or longer is copied in two halves at once when there is a copy helper.
  static constexpr uint32_t kSplitPages = 32;

  // Never returns. err: 0 for a checksum mismatch, else why the page could not be read.
  using CorruptHandler = void (*)(const Region&, uint64_t, uintptr_t, int err);

  struct Setup {
    Userfaultfd* uffd = nullptr;
    RegionTable* table = nullptr;
    SpinLock* table_lock = nullptr;
    PageSource* source = nullptr;  // null: every page is zero-filled
    uint64_t page_size = 4096;
    uint32_t fault_around_pages = 1;
    uint32_t readahead_pages = 1;      // cap of the readahead window; 1: one page per fault
    const void* zero_pages = nullptr;  // kMaxZeroCopy zeroed pages, never registered
    void* stage = nullptr;             // kStagePages pages, never registered
    TouchLog* touches = nullptr;       // optional: owed pages faults served, in order
    CopyHelper* copy_helper = nullptr;  // optional: copies half of each long data run
  };

  void init(const Setup& s);
  // A new source (a resumed process serves from its image): forget the readahead streams, and
  // cap the window at readahead_pages from now on.
  void set_source(PageSource* source, uint32_t readahead_pages);
  // Installs the page at `address` (and perhaps more). The caller handles kExists, kNoEntry and
  // kEventPending (retry after reading events); for a corrupt source page it never returns.
  FaultAnswer answer(uintptr_t address, bool write, CorruptHandler on_corrupt);

  // Installs owed pages of `r` from `page` on: at most max_pages, one ioctl, as far as they are
  // owed and of the first page's kind. Data comes checked from PageSource::read_pages: a snapshot
  // copies short runs into the staging buffer and hands long ones out from its file mapping. A partially installed run is consumed as
  // far as it went. On ENOENT (the run crosses the end of a VMA: mprotect split the region) it
  // retries shorter: halving, or straight to one page with `one_page_on_noent`. on_corrupt ==
  // nullptr: a first page that fails its checksum or cannot be read is reported (result.corrupt)
  // and left owed; a later one ends the run before it. With `only`, the run also ends at the first
  // page after the first that is not in that set.
  RunResult install_run(const Region& r, uintptr_t page, uint32_t max_pages, bool write, CorruptHandler on_corrupt,
                        bool one_page_on_noent, const PageSet* only = nullptr);

  ReadaheadWindow& readahead() { return readahead_; }
  PageSource* source() const { return s_.source; }
  uint64_t page_size() const { return s_.page_size; }

  // Installs zeros over [start, start + len): the shared zero page for a reader, private zeroed
  // pages for a writer (at most kMaxZeroCopy pages then).
  FillResult zero_fill(uintptr_t start, uint64_t len, bool write);

 private:

  Setup s_;
  ReadaheadWindow readahead_;
};

}  // namespace uffdlazy
