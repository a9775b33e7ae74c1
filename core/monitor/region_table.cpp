#include "core/monitor/region_table.h"

namespace uffdlazy {

namespace {

// A tombstone holds no state; it only absorbs one pending event for its range.
constexpr uint32_t kTombstoneId = 0;

}  // namespace

bool RegionTable::init(size_t live_capacity, size_t limbo_capacity, uint64_t page_size) {
  page_size_ = page_size;
  if (!live_.init(live_capacity)) return false;
  if (!limbo_.init(limbo_capacity)) {
    live_.release();
    return false;
  }
  return true;
}

void RegionTable::release() {
  live_.release();
  limbo_.release();
}

void RegionTable::clear() {
  live_.clear();
  limbo_.clear();
  dropped_pieces_ = 0;
  lost_sourced_ = 0;
}

void RegionTable::note_lost(const Region& piece) {
  dropped_pieces_++;
  if (piece.source == Region::kZeroSource || piece.id == kTombstoneId) return;
  lost_[lost_sourced_ % kLostKept] = piece;
  __atomic_store_n(&lost_sourced_, lost_sourced_ + 1, __ATOMIC_RELEASE);
}

uintptr_t RegionTable::batch_end(const RegionList* only, uintptr_t s, uintptr_t e) const {
  size_t n = 0;
  uintptr_t stop = e;
  auto count = [&](const Region& r) {
    if (++n == kMaxPieces && r.end < stop) stop = r.end;
  };
  if (only) {
    for (RegionList::Pos p = only->first_ending_after(s); p != RegionList::kNone && only->get(p).start < e;
         p = only->next(p)) {
      count(only->get(p));
    }
  } else {
    for_each_piece_an_event_reaches(s, e, count);
  }
  return stop;
}

void RegionTable::to_limbo(const Region& r) {
  // Limbo already covering part of r holds an older pending mapping; it keeps its place. (A
  // stale piece that finds no room is lost; its pending events then reach nothing or, at worst,
  // drop state of the new mapping: never old state applied to new memory.)
  if (limbo_.overlaps_any(r.start, r.end) || !limbo_.insert(r)) dropped_pieces_++;
}

void RegionTable::mapped(uintptr_t s, uintptr_t e) {
  if (!live_.overlaps_any(s, e)) return;
  // Collect first, then move: cutting live while inserting into limbo keeps both lists sorted.
  // Batch by batch, so that a new mapping over any number of old pieces sends each to limbo.
  for (uintptr_t cursor = s; cursor < e;) {
    const uintptr_t stop = batch_end(&live_, cursor, e);
    size_t n = 0;
    Region lost;
    auto collect = [&](const Region& r) {
      if (n < kMaxPieces) pieces_[n++] = r;
    };
    if (!live_.cut(cursor, stop, page_size_, collect, &lost)) note_lost(lost);
    for (size_t i = 0; i < n; i++) to_limbo(pieces_[i]);
    cursor = stop;
  }
}

bool RegionTable::insert(Region r) {
  if (!r.id) r.id = next_id();
  return live_.insert(r);
}

void RegionTable::forget(uintptr_t s, uintptr_t e) {
  Region lost;
  if (!live_.cut(s, e, page_size_, [](const Region&) {}, &lost)) note_lost(lost);
}

bool RegionTable::grew(uintptr_t start, uintptr_t old_end, uintptr_t new_end) {
  return live_.extend(start, old_end, new_end);
}

template <class Sink>
void RegionTable::take(uintptr_t s, uintptr_t e, Sink&& sink) {
  // Walk [s, e) in order: parts limbo covers come from limbo, the gaps between them from live.
  uintptr_t cursor = s;
  while (cursor < e) {
    const RegionList::Pos l = limbo_.first_ending_after(cursor);
    uintptr_t next_limbo = (l != RegionList::kNone && limbo_.get(l).start < e) ? limbo_.get(l).start : e;
    Region lost;
    if (next_limbo > cursor) {
      if (!live_.cut(cursor, next_limbo, page_size_, sink, &lost)) note_lost(lost);
      cursor = next_limbo;
      continue;
    }
    uintptr_t limbo_end = limbo_.get(l).end < e ? limbo_.get(l).end : e;
    if (!limbo_.cut(cursor, limbo_end, page_size_, sink, &lost)) note_lost(lost);
    cursor = limbo_end;
  }
}

void RegionTable::unmapped(uintptr_t s, uintptr_t e) {
  take(s, e, [](const Region&) {});
}

void RegionTable::moved(uintptr_t from, uintptr_t to, uint64_t len) {
  // Batch by batch: one VMA the kernel moves may hold any number of regions (adjacent mappings
  // with the same attributes share a VMA).
  for (uintptr_t cursor = from; cursor < from + len;) {
    const uintptr_t stop = batch_end(nullptr, cursor, from + len);
    size_t n = 0;
    take(cursor, stop, [&](const Region& r) {
      if (r.id == kTombstoneId) return;
      if (n < kMaxPieces) {
        pieces_[n++] = r;
      } else {
        note_lost(r);
      }
    });
    for (size_t i = 0; i < n; i++) {
      Region r = pieces_[i];
      uintptr_t shift_start = r.start - from;
      r.end = to + (r.end - from);
      r.start = to + shift_start;
      // Something newer already lives at the destination: this move is older news.
      if (live_.overlaps_any(r.start, r.end)) {
        to_limbo(r);
      } else {
        insert_merged(r);
      }
    }
    cursor = stop;
  }
  Region tomb = {};
  tomb.start = from;
  tomb.end = from + len;
  tomb.id = kTombstoneId;
  tomb.source = Region::kZeroSource;
  to_limbo(tomb);
}

void RegionTable::insert_merged(const Region& r) {
  if (!live_.insert(r)) {
    note_lost(r);
    return;
  }
  live_.merge_neighbours(r.start, page_size_);
}

void RegionTable::add_grown_tail(uintptr_t end, uint64_t grown) {
  const RegionList::Pos p = live_.find_pos(end - 1);
  if (p == RegionList::kNone || live_.get(p).end != end) return;  // not a region of ours
  Region tail = live_.get(p);
  tail.source_page += (end - tail.start) / page_size_;
  tail.start = end;
  tail.end = end + grown;
  // The kernel unmapped whatever lay there before it moved the region (an UNMAP read before the
  // REMAP); anything still in the table there is newer news, and the tail then stays unknown.
  if (!live_.overlaps_any(tail.start, tail.end)) insert_merged(tail);
}

bool RegionTable::note_applied_move(uintptr_t from, uintptr_t to, uint64_t old_len, uint64_t new_len,
                                    bool dontunmap, Region* moved) {
  // The REMAP is applied: a move of ours put the region at the destination and left a tombstone
  // over the old range (a plain move's UNMAP, which the tombstone is for, may have taken it since;
  // a DONTUNMAP move's never comes).
  const RegionList::Pos p = live_.find_pos(to);
  if (p == RegionList::kNone || live_.get(p).start != to) return false;
  if (dontunmap) {
    const RegionList::Pos t = limbo_.first_ending_after(from);
    const bool tombstone = t != RegionList::kNone && limbo_.get(t).id == kTombstoneId &&
                           limbo_.get(t).start == from && limbo_.get(t).end == from + old_len;
    if (!tombstone) return false;  // the region at the destination came from elsewhere
    limbo_.cut(from, from + old_len, page_size_, [](const Region&) {});
  }
  *moved = live_.get(p);
  if (new_len > old_len) add_grown_tail(to + old_len, new_len - old_len);
  return true;
}

bool RegionTable::lookup(uintptr_t addr, Region* out) const {
  const RegionList::Pos p = live_.find_pos(addr);
  if (p == RegionList::kNone) return false;
  *out = live_.get(p);
  return true;
}

}  // namespace uffdlazy
