#include "core/monitor/fault_policy.h"

#include <cerrno>

namespace uffdlazy {

// ---- ReadaheadWindow ----

void ReadaheadWindow::init(uint32_t max_pages, uint64_t page_size) {
  max_ = max_pages < 1 ? 1 : max_pages;
  page_size_ = page_size;
  clear();
}

void ReadaheadWindow::clear() {
  for (Stream& s : streams_) s = Stream{};
  initial_ = kInitial < max_ ? kInitial : max_;
  clock_ = 0;
}

uint32_t ReadaheadWindow::on_fault(uintptr_t page, uintptr_t region_end, uint32_t* pages) {
  const uint64_t ps = page_size_;
  clock_++;
  uint32_t hit = kStreams;
  for (uint32_t i = 0; i < kStreams; i++) {
    const Stream& s = streams_[i];
    // Anywhere from the window's fault to just past its end: the program went on reading where
    // the window led (it caught up with the background part, or reached the end).
    if (s.window && page >= s.start && page <= s.end) {
      hit = i;
      break;
    }
  }
  uint32_t window;
  if (hit < kStreams && page == streams_[hit].start) {
    window = streams_[hit].window;  // the same fault again (retried after an event): no news
  } else if (hit < kStreams) {
    window = streams_[hit].window;
    window = window > max_ / 2 ? max_ : window * 2;
    initial_ = initial_ * 2 > kInitial ? (kInitial < max_ ? kInitial : max_) : initial_ * 2;
  } else {
    window = initial_;
    if (initial_ > 1) initial_ /= 2;
    hit = 0;
    for (uint32_t i = 1; i < kStreams; i++) {
      if (streams_[i].used < streams_[hit].used) hit = i;
    }
  }
  uint64_t room = region_end > page ? (region_end - page) / ps : 1;
  if (room < 1) room = 1;
  Stream& s = streams_[hit];
  s.window = window;
  s.start = page;
  s.next = page;
  s.end = page + (window < room ? window : room) * ps;
  s.used = clock_;
  *pages = uint32_t((s.end - page) / ps);
  return hit;
}

void ReadaheadWindow::advanced(uint32_t s, uintptr_t to) {
  if (s >= kStreams) return;
  Stream& st = streams_[s];
  if (to > st.next) st.next = to < st.end ? to : st.end;
}

void ReadaheadWindow::stop(uint32_t s, uintptr_t at) {
  if (s >= kStreams) return;
  Stream& st = streams_[s];
  if (at < st.end) st.end = at > st.start ? at : st.start;
  if (st.next > st.end) st.next = st.end;
}

bool ReadaheadWindow::pending(uint32_t* s, uintptr_t* from, uintptr_t* end) const {
  bool found = false;
  for (uint32_t i = 0; i < kStreams; i++) {
    const Stream& st = streams_[i];
    if (!st.window || st.next >= st.end) continue;
    if (!found || st.used > streams_[*s].used) {
      *s = i;
      found = true;
    }
  }
  if (found) {
    *from = streams_[*s].next;
    *end = streams_[*s].end;
  }
  return found;
}

// ---- FaultPolicy ----

void FaultPolicy::init(const Setup& s) {
  s_ = s;
  readahead_.init(s.readahead_pages, s.page_size);
}

void FaultPolicy::set_source(PageSource* source, uint32_t readahead_pages) {
  s_.source = source;
  s_.readahead_pages = readahead_pages;
  readahead_.init(readahead_pages, s_.page_size);
}

RunResult FaultPolicy::install_run(const Region& r, uintptr_t page, uint32_t max_pages, bool write,
                                   CorruptHandler on_corrupt, bool one_page_on_noent, const PageSet* only) {
  const uint64_t ps = s_.page_size;
  RunResult out;
  PageSource* src = s_.source;
  const uint64_t sp = r.source_page + (page - r.start) / ps;
  if (!src || r.source == Region::kZeroSource) {
    out.end_of_owed = true;
    return out;
  }
  const PageLocation first = src->locate(r.source, sp);
  if (!first.owed) {
    out.end_of_owed = true;
    return out;
  }
  out.owed = true;
  if (first.pending) {
    out.pending = true;
    out.fill = FillResult{FillStatus::kNoEntry, 0, 0};
    return out;
  }
  const bool data = first.kind != PageKind::kZero;
  out.resolution = first.kind == PageKind::kData ? kResSnapshot : first.kind == PageKind::kDuplicate ? kResDuplicate
                                                                                                      : kResZero;
  // How far the run goes: owed pages of the same kind, data blocks adjacent. Only the index is
  // looked at here; the data is read (and checked) once, below.
  const uint64_t room = (r.end - page) / ps;
  uint32_t cap = uint32_t(max_pages < room ? max_pages : room);
  if (data && cap > kStagePages) cap = kStagePages;
  if (!data && write && cap > kMaxZeroCopy) cap = kMaxZeroCopy;
  uint32_t n = 1;
  while (n < cap) {
    if (only && !only->contains(r.source, sp + n)) break;
    const PageLocation loc = src->locate(r.source, sp + n);
    if (!loc.owed) {
      out.end_of_owed = true;
      break;
    }
    if (loc.pending) break;  // not landed yet: the run ends before it
    if (data ? (loc.kind == PageKind::kZero || loc.where != first.where + uint64_t(n) * ps) : loc.kind != PageKind::kZero)
      break;
    n++;
  }
  if (n == room && n < max_pages) out.end_of_owed = true;  // the region ends here
  // A long data run is shared with the copy helper: it reads, checks and copies the second half
  // while this thread does the first (see copy_helper.h).
  CopyHelper* helper = s_.copy_helper;
  const bool split = data && helper && n >= kSplitPages && src->reads_in_place(n / 2) && helper->available();
  const uint32_t half = split ? n / 2 : n;
  if (split) helper->post(CopyHelper::Job{src, r.source, sp + half, n - half, page + uint64_t(half) * ps, ps});
  uint32_t mine = half;
  const void* content = nullptr;
  bool first_bad = false;
  if (data) {
    const PagesRead got = src->read_pages(r.source, sp, mine, s_.stage, ps, &content);
    if (got.pages == 0) {
      first_bad = true;
      out.read_error = got.stop == PagesRead::kIoError ? (got.err ? got.err : EIO) : 0;
    } else if (got.pages < mine) {
      mine = got.pages;  // install what was good; the bad page is left for its own fault
      out.end_of_owed = false;
    }
  }
  if (!first_bad) {
    for (;;) {
      const uint64_t len = uint64_t(mine) * ps;
      out.fill = data ? s_.uffd->copy_from_source(page, content, len) : zero_fill(page, len, write);
      if (out.fill.status != FillStatus::kNoEntry || mine == 1) break;
      mine = one_page_on_noent ? 1 : mine / 2;
      out.end_of_owed = false;
    }
  }
  if (split) {
    const CopyHelper::Outcome b = helper->wait();
    const uint64_t b_pages = (b.fill.status == FillStatus::kDone || b.fill.status == FillStatus::kPartial)
                                 ? b.fill.bytes / ps : 0;
    const bool mine_whole = !first_bad && mine == half && out.fill.status == FillStatus::kDone;
    if (mine_whole && b_pages) {
      // One run, as if copied at once: up to where the second half stopped.
      const bool b_whole = b.read.pages == n - half && b.fill.status == FillStatus::kDone;
      out.fill = FillResult{b_whole ? FillStatus::kDone : FillStatus::kPartial, uint64_t(half + b_pages) * ps,
                            b_whole ? 0 : EAGAIN};
      if (!b_whole) out.end_of_owed = false;
    } else {
      // The first half stopped short (or the second installed nothing): the run is the first
      // half's; what the second did install is in place and owed no more.
      for (uint64_t i = 0; i < b_pages; i++) src->consume(r.source, sp + half + i);
      if (mine_whole) {
        out.fill = FillResult{FillStatus::kPartial, uint64_t(half) * ps, EAGAIN};
        out.end_of_owed = false;
      }
    }
  }
  if (first_bad) {
    // The first page itself failed its checksum or could not be read: never installed.
    if (on_corrupt) on_corrupt(r, sp, page, out.read_error ? out.read_error : 0);
    out.corrupt = true;
    out.end_of_owed = false;
    return out;
  }
  switch (out.fill.status) {
    case FillStatus::kDone:
    case FillStatus::kPartial: {
      const uint64_t done = out.fill.bytes / ps;
      out.pages = uint32_t(done ? done : 1);
      for (uint32_t i = 0; i < out.pages; i++) src->consume(r.source, sp + i);
      break;
    }
    case FillStatus::kExists:
      // Already in place: the source owes it no more.
      src->consume(r.source, sp);
      break;
    default:
      break;  // not there (ENOENT), an event to read first, exiting: still owed
  }
  return out;
}

FaultAnswer FaultPolicy::answer(uintptr_t address, bool write, CorruptHandler on_corrupt) {
  const uint64_t ps = s_.page_size;
  const uintptr_t page = address & ~(ps - 1);
  FaultAnswer a;
  bool found;
  {
    LockGuard g(*s_.table_lock);
    found = s_.table->lookup(page, &a.region);
  }
  if (found) a.region_id = a.region.id;
  a.sourced = found && a.region.source != Region::kZeroSource && s_.source;
  if (a.sourced) {
    a.source_page = a.region.source_page + (page - a.region.start) / ps;
    a.owed = s_.source->owed(a.region.source, a.source_page);
  }
  if (a.owed) {
    uint32_t window = 1, stream = ReadaheadWindow::kStreams;
    if (readahead_.max_pages() > 1) stream = readahead_.on_fault(page, a.region.end, &window);
    const uint32_t now = window < kSyncPages ? window : kSyncPages;
    RunResult run = install_run(a.region, page, now, write, on_corrupt, true);
    if (run.pending) {
      // Ask for the whole readahead window: a scan gets its next blocks in one request (the window
      // grows while faults continue where it ended); a random fault asks for its own page.
      s_.source->want(a.region.source, a.source_page, window);
      if (stream < ReadaheadWindow::kStreams) readahead_.stop(stream, page);
      a.parked = true;
      a.fill = run.fill;
      return a;
    }
    a.fill = run.fill;
    a.resolution = run.resolution;
    a.pages = run.pages;
    a.readahead = run.pages > 1 ? run.pages - 1 : 0;
    if (stream < ReadaheadWindow::kStreams) {
      if (run.pages && !run.end_of_owed) {
        readahead_.advanced(stream, page + uint64_t(run.pages) * ps);
      } else {
        // Nothing more to read ahead: the window ends at the first page not owed (or the fill
        // failed, and the fault will be retried and open the window again).
        readahead_.stop(stream, page + uint64_t(run.pages) * ps);
      }
    }
    if (s_.touches && (run.fill.status == FillStatus::kDone || run.fill.status == FillStatus::kPartial ||
                       run.fill.status == FillStatus::kExists)) {
      s_.touches->touched(a.region.source, a.source_page);
    }
    return a;
  }

  a.resolution = kResZero;
  // Only inside a region the table knows, and never into a sourced one (only its owed pages come
  // from the source; the others read zeros one at a time, as the source may owe their neighbours).
  uint64_t window = ps;
  if (found && !a.sourced && s_.fault_around_pages > 1) {
    const uint64_t room = a.region.end - page;
    window = uint64_t(s_.fault_around_pages) * ps;
    if (window > room) window = room;
  }
  a.fill = zero_fill(page, window, write);
  // The window may span two VMAs (an mprotect split the region): fall back to the one page.
  if (a.fill.status == FillStatus::kNoEntry && window > ps) a.fill = zero_fill(page, ps, write);
  if (a.fill.status == FillStatus::kDone || a.fill.status == FillStatus::kPartial) {
    // Partial: pages up to an already present one were installed (the faulting page first).
    a.pages = uint32_t(a.fill.bytes / ps ? a.fill.bytes / ps : 1);
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
