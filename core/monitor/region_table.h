// What the shim knows about the target's registered regions, kept consistent with the kernel's
// own view even though the two learn of changes in different orders.
//
// The kernel reports unmaps and moves as events that the monitor reads later, while interposers
// add regions as soon as mmap returns. So when a new mapping appears where the table still holds
// an old one, the old entry is stale: its event is pending. Such entries move to `limbo`, and
// events are applied to limbo first, so a late event about an old mapping never lands on the new
// one. A move (REMAP) is always followed by an UNMAP of the old range (unless MREMAP_DONTUNMAP);
// the move leaves an empty tombstone in limbo to absorb it. Mistakes in either direction can only
// ever drop snapshot state (pages then read as zeros), never apply old state to new memory.
//
// Not thread safe: callers hold the table's lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/monitor/region_list.h"

namespace uffdlazy {

class RegionTable {
 public:
  bool init(size_t live_capacity, size_t limbo_capacity, uint64_t page_size);
  void release();
  void clear();
  // See RegionList::copy_into_forks.
  void copy_into_forks(bool copy) const {
    live_.copy_into_forks(copy);
    limbo_.copy_into_forks(copy);
  }

  // A new mapping now occupies [s, e) (registered or not): whatever the table held there is stale.
  void mapped(uintptr_t s, uintptr_t e);
  // A new registered region; call after mapped() for its range. False when the table is full.
  bool insert(Region r);
  // Takes back a live region the kernel refused to register.
  void forget(uintptr_t s, uintptr_t e);
  // mremap grew a region in place: no event comes for that.
  bool grew(uintptr_t start, uintptr_t old_end, uintptr_t new_end);
  // The live region exactly [start, end) now corresponds, page for page from `source_page`, to
  // region `source` of an image (the one a checkpoint writes). Moves and splits carry the
  // correspondence along, as they do for a restore's. False if there is no such region.
  bool set_source(uintptr_t start, uintptr_t end, int32_t source, uint64_t source_page) {
    return live_.set_source(start, end, source, source_page);
  }
  // What the kernel's REMAP event for a move does not say, from the mremap call that made it, once
  // that REMAP has been applied (the caller makes sure, with a monitor sync):
  //  - new_len > old_len: the move grew the region; the tail [to + old_len, to + new_len) is new,
  //    registered memory of the same region;
  //  - dontunmap: MREMAP_DONTUNMAP, so no UNMAP of the old range follows and the move must leave
  //    no tombstone to absorb one (the old range stays mapped and registered, empty).
  // Returns false when the move was not of a region of ours (an unregistered mapping: no REMAP
  // came for it); else true with `moved` set to the moved region (its attributes).
  bool note_applied_move(uintptr_t from, uintptr_t to, uint64_t old_len, uint64_t new_len, bool dontunmap,
                         Region* moved);

  // Kernel events.
  void unmapped(uintptr_t s, uintptr_t e);
  void moved(uintptr_t from, uintptr_t to, uint64_t len);

  // Live region containing addr.
  bool lookup(uintptr_t addr, Region* out) const;

  // Visits every piece inside [s, e) that a kernel event for that range is about: limbo where
  // limbo covers (the event is older than the new mapping there), live elsewhere. For REMOVE.
  template <class Fn>
  void for_each_piece_an_event_reaches(uintptr_t s, uintptr_t e, Fn&& fn) const;

  const RegionList& live() const { return live_; }
  const RegionList& limbo() const { return limbo_; }
  uint32_t next_id() { return ++last_id_; }
  uint64_t dropped_pieces() const { return dropped_pieces_; }
  // Pieces of restored regions (a source) the table could not keep because it was full: their
  // owed pages can no longer be served. The monitor stops the process if any still owes pages.
  static constexpr size_t kLostKept = 8;
  // Readable without the table's lock (the monitor looks at it after every batch it reads).
  uint64_t lost_sourced() const { return __atomic_load_n(&lost_sourced_, __ATOMIC_ACQUIRE); }
  const Region& lost_piece(uint64_t i) const { return lost_[i % kLostKept]; }

 private:
  // Removes [s, e) from limbo where limbo covers it and from live elsewhere, handing every removed
  // piece (including tombstones) to sink.
  template <class Sink>
  void take(uintptr_t s, uintptr_t e, Sink&& sink);
  void to_limbo(const Region& r);
  void insert_merged(const Region& r);
  // The tail a grow that moved added after the piece ending at `end` (if it is ours).
  void add_grown_tail(uintptr_t end, uint64_t grown);
  // Where a batch of at most kMaxPieces pieces starting at s ends (take's order: limbo where it
  // covers, live elsewhere), so that a range of any number of pieces is handled batch by batch.
  uintptr_t batch_end(const RegionList* only, uintptr_t s, uintptr_t e) const;
  void note_lost(const Region& piece);

  // Scratch for pieces on their way between the lists: the table's callers hold its lock with
  // little stack to spare (see core/base/blocked_section.h), so no large local arrays.
  static constexpr size_t kMaxPieces = 16;
  Region pieces_[kMaxPieces] = {};

  RegionList live_;
  RegionList limbo_;
  uint64_t page_size_ = 4096;
  uint32_t last_id_ = 0;
  uint64_t dropped_pieces_ = 0;  // pieces lost to a full table
  uint64_t lost_sourced_ = 0;
  Region lost_[kLostKept] = {};
};

template <class Fn>
void RegionTable::for_each_piece_an_event_reaches(uintptr_t s, uintptr_t e, Fn&& fn) const {
  uintptr_t cursor = s;
  while (cursor < e) {
    const RegionList::Pos l = limbo_.first_ending_after(cursor);
    const bool in_limbo = l != RegionList::kNone && limbo_.get(l).start <= cursor;
    uintptr_t stop;
    if (in_limbo) {
      stop = limbo_.get(l).end < e ? limbo_.get(l).end : e;
      fn(limbo_.get(l).clipped(cursor, stop, page_size_));
    } else {
      stop = (l != RegionList::kNone && limbo_.get(l).start < e) ? limbo_.get(l).start : e;
      for (RegionList::Pos p = live_.first_ending_after(cursor); p != RegionList::kNone && live_.get(p).start < stop;
           p = live_.next(p)) {
        fn(live_.get(p).clipped(cursor, stop, page_size_));
      }
    }
    cursor = stop;
  }
}

}  // namespace uffdlazy
