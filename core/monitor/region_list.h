// A sorted array of non-overlapping regions in memory of its own (raw mmap, never registered).
//
// Kept deliberately simple: binary search to find, memmove to insert and remove. The shim tracks
// hundreds to a few thousand regions; an array beats a tree at that size and needs no allocator.
#pragma once

#include <cstddef>

#include "core/monitor/region.h"

namespace uffdlazy {

class RegionList {
 public:
  bool init(size_t capacity);
  void release();

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  const Region& at(size_t i) const { return items_[i]; }
  void clear() { size_ = 0; }

  // Index of the region containing addr, or -1.
  long find(uintptr_t addr) const;
  // Index of the first region whose end is above addr.
  size_t lower_bound(uintptr_t addr) const;
  bool overlaps_any(uintptr_t s, uintptr_t e) const;

  // Inserts a region that overlaps nothing in the list. False when full.
  bool insert(const Region& r);

  // Removes [s, e) from every region, splitting one that spans it. Each removed piece is handed to
  // sink(const Region&). False if a split needed room the list did not have (the piece beyond e
  // is then lost, which only ever drops state, never invents it).
  template <class Sink>
  // False when the list was full and the piece to the right of [s, e) could not be kept; *lost (if
  // given) is then that piece.
  bool cut(uintptr_t s, uintptr_t e, uint64_t page_size, Sink&& sink, Region* lost = nullptr);

  // Points the region that is exactly [start, end) at a source: false if there is none.
  bool set_source(uintptr_t start, uintptr_t end, int32_t source, uint64_t source_page);
  // Lets a region grow in place (mremap without a move): extends the one ending at old_end.
  bool extend(uintptr_t start, uintptr_t old_end, uintptr_t new_end);
  // Joins the region starting at `start` with its neighbours where they are pieces of one region
  // (same id and attributes, adjacent, consecutive source pages): a region moved or grown in
  // pieces becomes one entry again.
  void merge_neighbours(uintptr_t start, uint64_t page_size);

 private:
  void erase_at(size_t i);
  bool insert_at(size_t i, const Region& r);

  Region* items_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

template <class Sink>
bool RegionList::cut(uintptr_t s, uintptr_t e, uint64_t page_size, Sink&& sink, Region* lost) {
  bool ok = true;
  size_t i = lower_bound(s);
  while (i < size_ && items_[i].start < e) {
    Region cur = items_[i];
    sink(cur.clipped(s, e, page_size));
    bool keep_left = cur.start < s;
    bool keep_right = cur.end > e;
    if (keep_left && keep_right) {
      items_[i] = cur.clipped(cur.start, s, page_size);
      if (!insert_at(i + 1, cur.clipped(e, cur.end, page_size))) {
        ok = false;
        if (lost) *lost = cur.clipped(e, cur.end, page_size);
      }
      return ok;
    }
    if (keep_left) {
      items_[i] = cur.clipped(cur.start, s, page_size);
      i++;
    } else if (keep_right) {
      items_[i] = cur.clipped(e, cur.end, page_size);
      return ok;
    } else {
      erase_at(i);
    }
  }
  return ok;
}

}  // namespace uffdlazy
