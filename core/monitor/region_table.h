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

  // A new mapping now occupies [s, e) (registered or not): whatever the table held there is stale.
  void mapped(uintptr_t s, uintptr_t e);
  // A new registered region; call after mapped() for its range. False when the table is full.
  bool insert(Region r);
  // Takes back a live region the kernel refused to register.
  void forget(uintptr_t s, uintptr_t e);
  // mremap grew a region in place: no event comes for that.
  bool grew(uintptr_t start, uintptr_t old_end, uintptr_t new_end);

  // Kernel events.
  void unmapped(uintptr_t s, uintptr_t e);
  void moved(uintptr_t from, uintptr_t to, uint64_t len);

  // Live region containing addr.
  bool lookup(uintptr_t addr, Region* out) const;

  // Visits every piece of a region (live and limbo) inside [s, e): for REMOVE, which must reach
  // state wherever it is.
  template <class Fn>
  void for_each_overlap(uintptr_t s, uintptr_t e, Fn&& fn) const;

  const RegionList& live() const { return live_; }
  const RegionList& limbo() const { return limbo_; }
  uint32_t next_id() { return ++last_id_; }
  uint64_t dropped_pieces() const { return dropped_pieces_; }

 private:
  // Removes [s, e) from limbo where limbo covers it and from live elsewhere, handing every removed
  // piece (including tombstones) to sink.
  template <class Sink>
  void take(uintptr_t s, uintptr_t e, Sink&& sink);
  void to_limbo(const Region& r);

  RegionList live_;
  RegionList limbo_;
  uint64_t page_size_ = 4096;
  uint32_t last_id_ = 0;
  uint64_t dropped_pieces_ = 0;  // state lost to a full table; reported, never silent
};

template <class Fn>
void RegionTable::for_each_overlap(uintptr_t s, uintptr_t e, Fn&& fn) const {
  for (const RegionList* list : {&live_, &limbo_}) {
    for (size_t i = list->lower_bound(s); i < list->size() && list->at(i).start < e; i++) {
      fn(list->at(i).clipped(s, e, page_size_));
    }
  }
}

}  // namespace uffdlazy
