// Ranges the program takes for itself, carried out by the monitor.
//
// Two kinds. The program's own userfaultfd registers a range, or the program locks one: a VMA can
// be registered with one userfaultfd only (the program's UFFDIO_REGISTER fails with EBUSY), and the
// kernel populates locked memory itself, inside mlock, mmap(MAP_LOCKED) and a mremap that grows a
// locked mapping (a populate that waits, inside mremap, for a monitor that cannot fill the new range
// before the mremap's own REMAP event is read: it would hang). The shim steps aside: what a snapshot
// owes there is put in place, then the range is unregistered and forgotten. And the kernel reads or
// writes the program's memory on the program's behalf without waiting for a fault handler
// (/proc/self/mem: a registered page not yet in place is EIO): the pages are put in place first.
//
// Both run on the monitor thread, at a quiet point of its loop (every event applied, every fault
// read answered), so no fill of the monitor's can race the change: once the range is unregistered,
// faults there are no longer the shim's, and a fault already pending on it is woken by the kernel
// (UFFDIO_UNREGISTER wakes the range) and taken again by whoever owns the range then.
#include <cerrno>

#include "core/base/align.h"
#include "core/base/blocked_section.h"
#include "core/monitor/monitor.h"

namespace uffdlazy {

void Monitor::step_aside(uintptr_t start, uintptr_t end) { claim(Claim::kStepAside, start, end); }

void Monitor::make_present(uintptr_t start, uintptr_t end) { claim(Claim::kMakePresent, start, end); }

void Monitor::claim(Claim kind, uintptr_t start, uintptr_t end) {
  if (!running() || start >= end) return;
  // Signals blocked while the slot is held: a handler on this thread that claims too would wait
  // for itself.
  BlockedSection section(claim_lock_);
  claim_kind_ = kind;
  claim_start_ = start;
  claim_end_ = end;
  request_and_wait(claim_requested_, claim_done_);
}

bool Monitor::carry_out_claim() {
  if (claim_kind_ == Claim::kStepAside) return give_up_range(claim_start_, claim_end_);
  return populate_range(claim_start_, claim_end_);
}

bool Monitor::give_up_range(uintptr_t start, uintptr_t end) {
  const uint64_t ps = s_.page_size;
  // What a snapshot owes there goes in first (once unregistered, a missing page reads zeros), stored
  // zero pages too: present, as they were when recorded (the program's own userfaultfd then sees
  // faults exactly where the recorded process had no page).
  if (!fill_.fill_owed_in(*this, start, end, &Monitor::fatal_corrupt)) return false;
  // Then forgotten and unregistered, a batch of pieces at a time (the table may hold any number).
  constexpr size_t kPieces = 16;
  Region pieces[kPieces];
  for (;;) {
    size_t n = 0;
    {
      LockGuard g(*s_.table_lock);
      const RegionList& live = s_.table->live();
      for (size_t i = live.lower_bound(start); i < live.size() && live.at(i).start < end && n < kPieces; i++) {
        pieces[n++] = live.at(i).clipped(start, end, ps);
      }
      for (size_t i = 0; i < n; i++) {
        const Region& r = pieces[i];
        // Owed no more (a page that could not be installed would read zeros).
        if (s_.source && r.source != Region::kZeroSource) s_.source->drop(r.source, r.source_page, r.length() / ps);
        s_.table->forget(r.start, r.end);
      }
    }
    if (!n) return true;
    for (size_t i = 0; i < n; i++) s_.uffd->unregister(pieces[i].start, pieces[i].length());
    MonitorCounters::bump(s_.counters->aside, n);
  }
}

bool Monitor::populate_range(uintptr_t start, uintptr_t end) {
  const uint64_t ps = s_.page_size;
  uintptr_t cursor = start & ~(ps - 1);
  end = align_up(end, ps);
  while (cursor < end) {
    Region reg;
    {
      LockGuard g(*s_.table_lock);
      const RegionList& live = s_.table->live();
      const size_t i = live.lower_bound(cursor);
      if (i >= live.size() || live.at(i).start >= end) return true;
      reg = live.at(i);
    }
    const uintptr_t at = reg.start > cursor ? reg.start : cursor;
    const uintptr_t stop = reg.end < end ? reg.end : end;
    const bool sourced = s_.source && reg.source != Region::kZeroSource;
    const uint64_t first = reg.source_page + (at - reg.start) / ps;
    FillResult fill;
    uint64_t pages = 0;
    bool data = false;
    if (sourced && s_.source->owed(reg.source, first)) {
      const uint64_t room = (stop - at) / ps;
      const uint32_t max = uint32_t(room < FaultPolicy::kStagePages ? room : FaultPolicy::kStagePages);
      const RunResult run = policy_.install_run(reg, at, max, false, &Monitor::fatal_corrupt, true);
      fill = run.fill;
      pages = run.pages;
      data = run.resolution != kResZero;
    } else {
      // Zeros up to the next page a snapshot owes (or the end). Pages already in place stop the
      // run (EEXIST, or a partial run up to them) and are stepped over one at a time.
      uint64_t len = stop - at;
      if (sourced) {
        const uint64_t last = reg.source_page + (stop - reg.start) / ps;
        len = (s_.source->next_owed(reg.source, first, last) - first) * ps;
      }
      fill = policy_.zero_fill(at, len, false);
      // The run may span two VMAs (an mprotect split the region): one page then.
      if (fill.status == FillStatus::kNoEntry && len > ps) fill = policy_.zero_fill(at, ps, false);
      pages = fill.bytes / ps;
    }
    switch (fill.status) {
      case FillStatus::kDone:
      case FillStatus::kPartial:
        if (!pages) pages = 1;
        MonitorCounters::bump(data ? s_.counters->pages_data : s_.counters->pages_zero, pages);
        cursor = at + pages * ps;
        break;
      case FillStatus::kExists:
      case FillStatus::kNoEntry:
        cursor = at + ps;  // in place already, or not registered there: nothing to do
        break;
      case FillStatus::kEventPending:
        if (!take_in_events()) return false;
        cursor = at;  // the table may have changed: look again
        break;
      case FillStatus::kExiting:
        return false;
      case FillStatus::kError:
        fatal("putting pages in place for the kernel failed", fill.err);
    }
  }
  return true;
}

}  // namespace uffdlazy
