// How one fault is answered: which pages go in, with what content, in one fill.
//
// The monitor's loop (monitor.cpp) reads faults and events and decides when to answer; this decides
// what the answer is. A page of a region with a source (a snapshot being restored) gets the
// source's content if it is still owed; any other page gets zeros, with fault-around: a zero-filled
// fault installs up to N pages (the faulting page and those after it in the region), as THP does
// for anonymous memory, so a sequential writer pays one round trip per window instead of per page.
// Monitor thread only; takes the table lock only to look the region up.
#pragma once

#include <cstdint>

#include "core/base/spin_lock.h"
#include "core/monitor/page_source.h"
#include "core/monitor/region.h"
#include "core/monitor/region_table.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {

// Resolution codes handed to the FaultObserver: the values of latency's Resolution.
enum FaultResolution { kResSnapshot = 0, kResZero = 1, kResDuplicate = 2, kResPresent = 3, kResGone = 4 };

struct FaultAnswer {
  FillResult fill;
  int resolution = kResZero;
  uint32_t pages = 0;       // pages installed
  uint32_t region_id = 0;   // 0: the address is in no region the table knows
  bool sourced = false;     // the page came from (or was owed by) the source
  Region region{};          // valid when region_id != 0
  uint64_t source_page = 0;
};

class FaultPolicy {
 public:
  struct Setup {
    Userfaultfd* uffd = nullptr;
    RegionTable* table = nullptr;
    SpinLock* table_lock = nullptr;
    PageSource* source = nullptr;  // null: every page is zero-filled
    uint64_t page_size = 4096;
    uint32_t fault_around_pages = 1;
    const void* zero_pages = nullptr;  // fault_around_pages zeroed pages, never registered
  };

  void init(const Setup& s) { s_ = s; }
  void set_source(PageSource* source) { s_.source = source; }
  // Installs the page at `address` (and perhaps more). The caller handles kExists, kNoEntry and
  // kEventPending (retry after reading events); for a corrupt source page it never returns.
  FaultAnswer answer(uintptr_t address, bool write, void (*on_corrupt)(const Region&, uint64_t, uintptr_t));

 private:
  FillResult zero_fill(uintptr_t start, uint64_t len, bool write);

  Setup s_;
};

}  // namespace uffdlazy
