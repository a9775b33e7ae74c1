#include "core/monitor/background_fill.h"

#include "core/monitor/monitor.h"

namespace uffdlazy {

void BackgroundFill::init(const Setup& s) {
  s_ = s;
  chunk_ = kMinChunk;
  ws_index_ = 0;
  ws_offset_ = 0;
  ws_done_ = true;
  sweep_cursor_ = 0;
  sweep_done_ = true;
  cached_start_ = 0;
}

void BackgroundFill::set_source(PageSource* source, PrefetchMode mode) {
  s_.source = source;
  s_.mode = mode;
  s_.working_set = nullptr;
  s_.working_set_runs = 0;
  s_.working_set_pages = nullptr;
  ws_index_ = 0;
  ws_offset_ = 0;
  ws_done_ = true;
  sweep_cursor_ = 0;
  sweep_done_ = true;
  cached_start_ = 0;
  chunk_ = kMinChunk;
  quiet_ = 0;
}

void BackgroundFill::restart() {
  if (!s_.source || s_.mode == PrefetchMode::kNone) return;
  if (s_.working_set_runs) {
    ws_index_ = 0;
    ws_offset_ = 0;
    ws_done_ = false;
  }
  if (s_.mode == PrefetchMode::kAll) {
    sweep_cursor_ = 0;
    sweep_done_ = false;
  }
}

void BackgroundFill::fault_seen(uintptr_t address) {
  const uint64_t near = uint64_t(2) * kMaxChunk * s_.page_size;
  auto close_to = [&](uintptr_t frontier) {
    return address >= frontier ? address - frontier < near : frontier - address < near;
  };
  uint32_t s;
  uintptr_t from, end;
  if (!sweep_done_ && close_to(sweep_cursor_)) return;
  if (s_.policy && s_.policy->readahead().pending(&s, &from, &end) && close_to(from)) return;
  chunk_ = kMinChunk;
  quiet_ = 0;
}

bool BackgroundFill::has_work() const {
  if (!s_.source) return false;
  uint32_t s;
  uintptr_t from, end;
  return !ws_done_ || !sweep_done_ || s_.policy->readahead().pending(&s, &from, &end);
}

bool BackgroundFill::step(FillHost& host) {
  uint32_t s;
  uintptr_t from, end;
  Chunk c;
  if (s_.policy->readahead().pending(&s, &from, &end)) {
    c = readahead_chunk(host);
  } else if (!ws_done_) {
    c = working_set_chunk(host);
  } else if (!sweep_done_) {
    c = sweep_chunk(host, &sweep_cursor_, &sweep_done_, false, nullptr);
  } else {
    return true;
  }
  if (c == Chunk::kExiting) return false;
  if (c == Chunk::kProgress) grow_chunk();
  return true;
}

bool BackgroundFill::fill_working_set(FillHost& host) {
  if (!s_.source || !s_.working_set_runs || s_.mode == PrefetchMode::kNone) return true;
  ws_index_ = 0;
  ws_offset_ = 0;
  ws_done_ = false;
  while (!ws_done_) {
    Chunk c = working_set_chunk(host);
    if (c == Chunk::kExiting || !host.take_in()) return false;
    if (c == Chunk::kProgress) grow_chunk();
  }
  return true;
}

bool BackgroundFill::fill_all_data(FillHost& host, FaultPolicy::CorruptHandler on_corrupt) {
  return fill_to_the_end(host, 0, UINTPTR_MAX, true, on_corrupt);
}

bool BackgroundFill::fill_owed_in(FillHost& host, uintptr_t start, uintptr_t end,
                                  FaultPolicy::CorruptHandler on_corrupt) {
  return fill_to_the_end(host, start, end, false, on_corrupt);
}

bool BackgroundFill::fill_to_the_end(FillHost& host, uintptr_t start, uintptr_t end, bool data_only,
                                     FaultPolicy::CorruptHandler on_corrupt) {
  if (!s_.source) return true;
  uintptr_t cursor = start;
  bool done = false;
  while (!done) {
    Chunk c = sweep_chunk(host, &cursor, &done, data_only, on_corrupt, end);
    if (c == Chunk::kExiting || !host.take_in()) return false;
    if (c == Chunk::kProgress) grow_chunk();
  }
  return true;
}

void BackgroundFill::count(const RunResult& r, bool prefetch) {
  if (!r.pages) return;
  if (prefetch) {
    MonitorCounters::bump(s_.counters->prefetched, r.pages);
  } else {
    MonitorCounters::bump(s_.counters->readahead, r.pages);
    MonitorCounters::bump(r.resolution == kResZero ? s_.counters->pages_zero : s_.counters->pages_data, r.pages);
  }
  if (s_.observer) s_.observer->installed_ahead(prefetch ? AheadKind::kPrefetch : AheadKind::kReadahead, r.pages);
}

BackgroundFill::Chunk BackgroundFill::after_failure(FillHost& host, const RunResult& r) {
  switch (r.fill.status) {
    case FillStatus::kEventPending:
      // The table is about to change: take the events in, then look everything up again.
      return host.take_in_events() ? Chunk::kRetry : Chunk::kExiting;
    case FillStatus::kExiting:
      return Chunk::kExiting;
    case FillStatus::kError:
      host.fill_failed("installing pages ahead of the program failed", r.fill.err);
      return Chunk::kExiting;
    default:
      return Chunk::kProgress;
  }
}

BackgroundFill::Chunk BackgroundFill::readahead_chunk(FillHost& host) {
  ReadaheadWindow& ra = s_.policy->readahead();
  const uint64_t ps = s_.page_size;
  uint32_t s;
  uintptr_t from, end;
  if (!ra.pending(&s, &from, &end)) return Chunk::kProgress;
  Region reg;
  bool found;
  {
    LockGuard g(*s_.table_lock);
    found = s_.table->lookup(from, &reg);
  }
  if (!found || reg.source == Region::kZeroSource) {
    ra.stop(s, from);
    return Chunk::kProgress;
  }
  const uint64_t left = (end - from) / ps;
  const uint32_t max = uint32_t(left < chunk_ ? left : chunk_);
  RunResult r = s_.policy->install_run(reg, from, max, false, nullptr, false);
  switch (r.fill.status) {
    case FillStatus::kDone:
    case FillStatus::kPartial:
      if (!r.owed || r.corrupt) break;
      count(r, false);
      ra.advanced(s, from + uint64_t(r.pages) * ps);
      if (r.end_of_owed) ra.stop(s, from + uint64_t(r.pages) * ps);
      return Chunk::kProgress;
    case FillStatus::kExists:
      if (!r.owed || r.corrupt) break;
      ra.advanced(s, from + ps);
      return Chunk::kProgress;
    case FillStatus::kNoEntry:
      break;
    default:
      return after_failure(host, r);
  }
  // Not owed, not installable here, or failed its checksum: the readahead ends before it.
  ra.stop(s, from);
  return Chunk::kProgress;
}

bool BackgroundFill::find_source_page(int32_t source, uint64_t page, Region* out, uint64_t* next) {
  const uint64_t ps = s_.page_size;
  *next = UINT64_MAX;
  LockGuard g(*s_.table_lock);
  const RegionList& live = s_.table->live();
  auto holds = [&](const Region& r) {
    return r.source == source && page >= r.source_page && page < r.source_page + r.length() / ps;
  };
  // Most lookups are for the region the last one found.
  const RegionList::Pos cached = live.find_pos(cached_start_);
  if (cached != RegionList::kNone && holds(live.get(cached))) {
    *out = live.get(cached);
    return true;
  }
  for (RegionList::Pos p = live.first(); p != RegionList::kNone; p = live.next(p)) {
    const Region& r = live.get(p);
    if (r.source != source) continue;
    if (holds(r)) {
      cached_start_ = r.start;
      *out = r;
      return true;
    }
    if (r.source_page > page && r.source_page < *next) *next = r.source_page;
  }
  return false;
}

BackgroundFill::Chunk BackgroundFill::working_set_chunk(FillHost& host) {
  const uint64_t ps = s_.page_size;
  uint32_t budget = chunk_;
  while (budget && ws_index_ < s_.working_set_runs) {
    const SourceRun& run = s_.working_set[ws_index_];
    if (ws_offset_ >= run.pages) {
      ws_index_++;
      ws_offset_ = 0;
      continue;
    }
    const int32_t source = int32_t(run.source);
    const uint64_t page = run.first_page + ws_offset_;
    const uint64_t run_end = run.first_page + run.pages;
    Region reg;
    uint64_t next;
    if (!find_source_page(source, page, &reg, &next)) {
      // Not mapped (yet, or any more): the rest of the run up to the next mapped piece is skipped
      // now; a region restored later starts the working set over.
      ws_offset_ = (next < run_end ? next : run_end) - run.first_page;
      continue;
    }
    const uint64_t reg_end = reg.source_page + reg.length() / ps;
    const uint64_t record_end = run_end < reg_end ? run_end : reg_end;
    const uint64_t owed = s_.source->next_owed(source, page, record_end);
    if (owed != page) {
      ws_offset_ = owed - run.first_page;  // past what this record names that is in place already
      continue;
    }
    // With the working set as a set, a run may go on past the end of this record into pages that
    // later records name; without it, only as far as the record goes.
    const uint64_t stop = s_.working_set_pages ? reg_end : record_end;
    const uint64_t avail = stop - page;
    const uint32_t max = uint32_t(avail < budget ? avail : budget);
    const uintptr_t addr = reg.start + (page - reg.source_page) * ps;
    RunResult r = s_.policy->install_run(reg, addr, max, false, nullptr, false, s_.working_set_pages);
    if (r.pending) {
      // A remote block not landed yet: asked for in the set's first-touch order, installed by a
      // later pass (the fill starts over when blocks land).
      s_.source->want(source, page, uint32_t(record_end - page));
      ws_offset_ = record_end - run.first_page;
      budget--;
      continue;
    }
    switch (r.fill.status) {
      case FillStatus::kDone:
      case FillStatus::kPartial:
        if (r.owed && !r.corrupt) {
          count(r, true);
          ws_offset_ += r.pages;
          budget = r.pages < budget ? budget - r.pages : 0;
          continue;
        }
        break;
      case FillStatus::kExists:
      case FillStatus::kNoEntry:
        break;
      default:
        return after_failure(host, r);
    }
    ws_offset_++;  // in place already, not installable now, or corrupt: left to its fault
    budget--;
  }
  if (ws_index_ >= s_.working_set_runs) ws_done_ = true;
  return Chunk::kProgress;
}

BackgroundFill::Chunk BackgroundFill::sweep_chunk(FillHost& host, uintptr_t* cursor, bool* done, bool data_only,
                                                  FaultPolicy::CorruptHandler on_corrupt, uintptr_t limit) {
  const uint64_t ps = s_.page_size;
  uint32_t budget = chunk_;
  while (budget) {
    Region reg;
    bool found = false;
    {
      LockGuard g(*s_.table_lock);
      const RegionList& live = s_.table->live();
      for (RegionList::Pos p = live.first_ending_after(*cursor); p != RegionList::kNone && live.get(p).start < limit;
           p = live.next(p)) {
        if (live.get(p).source != Region::kZeroSource) {
          reg = live.get(p).clipped(live.get(p).start, limit, ps);
          found = true;
          break;
        }
      }
    }
    if (!found || *cursor >= limit) {
      *done = true;
      return Chunk::kProgress;
    }
    uintptr_t addr = reg.start > *cursor ? reg.start : *cursor;
    const uint64_t first = reg.source_page + (addr - reg.start) / ps;
    const uint64_t last = reg.source_page + reg.length() / ps;
    const uint64_t owed = s_.source->next_owed(reg.source, first, last);
    if (owed >= last) {
      *cursor = reg.end;
      continue;
    }
    addr = reg.start + (owed - reg.source_page) * ps;
    if (data_only && s_.source->peek(reg.source, owed).kind == PageKind::kZero) {
      *cursor = addr + ps;  // a stored zero page: nothing to copy for a child
      continue;
    }
    const uint64_t avail = (reg.end - addr) / ps;
    const uint32_t max = uint32_t(avail < budget ? avail : budget);
    RunResult r = s_.policy->install_run(reg, addr, max, false, on_corrupt, false);
    if (r.pending && on_corrupt) {
      // Everything must be in place (a fork, memory the program claims): wait for the block,
      // then install it. The background sweep (no handler) skips it until it lands.
      if (!s_.source->wait_landed(reg.source, owed)) return Chunk::kExiting;
      continue;
    }
    switch (r.fill.status) {
      case FillStatus::kDone:
      case FillStatus::kPartial:
        if (r.owed && !r.corrupt) {
          count(r, true);
          *cursor = addr + uint64_t(r.pages) * ps;
          budget = r.pages < budget ? budget - r.pages : 0;
          continue;
        }
        break;
      case FillStatus::kExists:
      case FillStatus::kNoEntry:
        break;
      default:
        return after_failure(host, r);
    }
    *cursor = addr + ps;
    budget--;
  }
  return Chunk::kProgress;
}

}  // namespace uffdlazy
