// Non-overlapping regions in address order, in memory of its own (raw mmap, never registered).
//
// A program may hold tens of thousands of mappings (a thread stack each, one per large malloc
// chunk) and change them in any order, so every change costs O(log n): the regions are nodes of a
// treap (a binary search tree by address whose nodes also form a heap by a random priority, which
// keeps it balanced in expectation whatever the order of changes) with parent links, so that
// every walk is a loop (the table's callers have little stack to spare) and no node moves once
// placed. Nodes come from a pool mapped at init, never from an allocator; the pool is not copied
// into a forked child (MADV_WIPEONFORK: the child starts with an empty list, see clear()), so a
// fork costs nothing proportional to the list. Each node counts its subtree, so the i-th region
// is found in O(log n) too.
//
// Two ways to walk it: positions (Pos: a node, stable until that region is removed; next/prev in
// O(log n), O(1) on average) and indexes (at(i), lower_bound(), find(): O(log n) each).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/monitor/region.h"

namespace uffdlazy {

class RegionList {
 public:
  using Pos = uint32_t;
  static constexpr Pos kNone = 0;

  bool init(size_t capacity);
  void release();

  size_t size() const { return nodes_ ? nodes_[root_].count : 0; }
  size_t capacity() const { return capacity_; }
  // Forgets every region at once (O(1)); does not read the pool, which a forked child finds wiped.
  void clear();
  // Whether a forked child gets a copy of the pool (normally not: see above). A checkpoint's
  // image writer is such a child and must see the list: the checkpoint asks for copies while it
  // starts the writer, then goes back to wiping.
  void copy_into_forks(bool copy) const;

  // Positions.
  Pos first() const;
  Pos next(Pos p) const;
  Pos prev(Pos p) const;
  const Region& get(Pos p) const { return nodes_[p].r; }
  // The region containing addr, or kNone.
  Pos find_pos(uintptr_t addr) const;
  // The first region whose end is above addr, or kNone.
  Pos first_ending_after(uintptr_t addr) const;

  // Indexes, in address order.
  const Region& at(size_t i) const { return nodes_[pos_at(i)].r; }
  // Index of the region containing addr, or -1.
  long find(uintptr_t addr) const;
  // Index of the first region whose end is above addr (size() if none).
  size_t lower_bound(uintptr_t addr) const;

  bool overlaps_any(uintptr_t s, uintptr_t e) const;

  // Inserts a region that overlaps nothing in the list. False when full (or if it overlaps).
  bool insert(const Region& r);

  // Removes [s, e) from every region, splitting one that spans it. Each removed piece is handed to
  // sink(const Region&). False when the list was full and the piece to the right of [s, e) could
  // not be kept; *lost (if given) is then that piece (which only ever drops state, never invents it).
  template <class Sink>
  bool cut(uintptr_t s, uintptr_t e, uint64_t page_size, Sink&& sink, Region* lost = nullptr);

  // Points the region that is exactly [start, end) at a source: false if there is none.
  bool set_source(uintptr_t start, uintptr_t end, int32_t source, uint64_t source_page);
  // Lets a region grow in place (mremap without a move): extends the one ending at old_end.
  bool extend(uintptr_t start, uintptr_t old_end, uintptr_t new_end);
  // Joins the region starting at `start` with its neighbours where they are pieces of one region
  // (same id and attributes, adjacent, consecutive source pages): a region moved or grown in
  // pieces becomes one entry again.
  void merge_neighbours(uintptr_t start, uint64_t page_size);

  // The tree's own invariants (order, heap, counts, links, pool accounting); for tests.
  bool well_formed() const;

 private:
  struct Node {
    Region r;
    Pos left, right, parent;
    uint32_t count;     // nodes in this subtree (the nil node 0 counts 0)
    uint32_t priority;  // heap order: a parent's is at least its children's
  };

  Pos pos_at(size_t i) const;
  size_t rank(Pos p) const;
  Pos allocate();
  void erase(Pos p);
  void rotate_up(Pos c);
  void replace_child(Pos parent, Pos old_child, Pos new_child);
  void update_count(Pos p) { nodes_[p].count = 1 + nodes_[nodes_[p].left].count + nodes_[nodes_[p].right].count; }
  uint32_t next_priority();

  Node* nodes_ = nullptr;  // nodes_[0] is the nil node: count 0, never written
  size_t capacity_ = 0;
  size_t bytes_ = 0;
  Pos root_ = kNone;
  Pos free_ = kNone;     // released nodes, linked through `left`
  uint32_t fresh_ = 1;   // nodes from here on were never used since clear()
  uint32_t seed_ = 0x9e3779b9u;
};

template <class Sink>
bool RegionList::cut(uintptr_t s, uintptr_t e, uint64_t page_size, Sink&& sink, Region* lost) {
  Pos p = first_ending_after(s);
  while (p != kNone && nodes_[p].r.start < e) {
    const Region cur = nodes_[p].r;
    sink(cur.clipped(s, e, page_size));
    const bool keep_left = cur.start < s;
    const bool keep_right = cur.end > e;
    if (keep_left && keep_right) {
      nodes_[p].r = cur.clipped(cur.start, s, page_size);
      const Region right = cur.clipped(e, cur.end, page_size);
      if (!insert(right)) {
        if (lost) *lost = right;
        return false;
      }
      return true;
    }
    if (keep_left) {
      nodes_[p].r = cur.clipped(cur.start, s, page_size);
      p = next(p);
    } else if (keep_right) {
      nodes_[p].r = cur.clipped(e, cur.end, page_size);
      return true;
    } else {
      const Pos after = next(p);
      erase(p);
      p = after;
    }
  }
  return true;
}

}  // namespace uffdlazy
