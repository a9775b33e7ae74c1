#include "core/monitor/fault_policy.h"

namespace uffdlazy {

FaultAnswer FaultPolicy::answer(uintptr_t address, bool write,
                                void (*on_corrupt)(const Region&, uint64_t, uintptr_t)) {
  const uint64_t ps = s_.page_size;
  const uintptr_t page = address & ~(ps - 1);
  FaultAnswer a;
  bool found;
  {
    LockGuard g(*s_.table_lock);
    found = s_.table->lookup(page, &a.region);
  }
  if (found) a.region_id = a.region.id;
  PageContent content = {PageKind::kZero, nullptr};
  a.sourced = found && a.region.source != Region::kZeroSource && s_.source;
  if (a.sourced) {
    a.source_page = a.region.source_page + (page - a.region.start) / ps;
    content = s_.source->peek(a.region.source, a.source_page);
    if (content.kind == PageKind::kCorrupt) on_corrupt(a.region, a.source_page, page);
  }

  if (content.kind == PageKind::kData || content.kind == PageKind::kDuplicate) {
    a.fill = s_.uffd->copy(page, content.data, ps);
    a.resolution = content.kind == PageKind::kData ? kResSnapshot : kResDuplicate;
  } else {
    a.resolution = kResZero;
    // Only inside a region the table knows, and never into a sourced one (its pages are owed).
    uint64_t window = ps;
    if (found && !a.sourced && s_.fault_around_pages > 1) {
      const uint64_t room = a.region.end - page;
      window = uint64_t(s_.fault_around_pages) * ps;
      if (window > room) window = room;
    }
    a.fill = zero_fill(page, window, write);
    // The window may span two VMAs (an mprotect split the region): fall back to the one page.
    if (a.fill.status == FillStatus::kNoEntry && window > ps) a.fill = zero_fill(page, ps, write);
  }
  if (a.fill.status == FillStatus::kDone || a.fill.status == FillStatus::kPartial) {
    // Partial: pages up to an already present one were installed (the faulting page first).
    a.pages = uint32_t(a.fill.bytes / ps ? a.fill.bytes / ps : 1);
  }
  // The page is in place or can no longer be served there: the source owes it no more.
  if (a.sourced && a.fill.status != FillStatus::kNoEntry && a.fill.status != FillStatus::kEventPending &&
      a.fill.status != FillStatus::kExiting) {
    s_.source->consume(a.region.source, a.source_page);
  }
  return a;
}

FillResult FaultPolicy::zero_fill(uintptr_t start, uint64_t len, bool write) {
  // A write would land on the shared zero page and fault again in the kernel; give a writer
  // private zeroed pages straight away. Readers share the zero page and cost no memory.
  if (write) return s_.uffd->copy(start, s_.zero_pages, len);
  return s_.uffd->zeropage(start, len);
}

}  // namespace uffdlazy
