#include "core/monitor/region_list.h"

#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

bool RegionList::init(size_t capacity) {
  if (capacity == 0 || capacity >= UINT32_MAX) return false;
  // Only the nodes in use are ever touched: the rest of the pool costs address space, not memory.
  const size_t bytes = (capacity + 1) * sizeof(Node);
  long r = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(r)) return false;
  // A forked child gets the pool zeroed instead of copied: fork copies no page of it and the
  // parent takes no copy-on-write fault on it afterwards. The child's list starts empty anyway
  // (clear()); an all-zero pool is exactly that. Without the advice (an old kernel) the pool is
  // copied like any memory, which is only slower.
  sys::madvise(reinterpret_cast<void*>(r), bytes, MADV_WIPEONFORK);
  nodes_ = reinterpret_cast<Node*>(r);
  capacity_ = capacity;
  bytes_ = bytes;
  clear();
  return true;
}

void RegionList::release() {
  if (nodes_) sys::munmap(nodes_, bytes_);
  nodes_ = nullptr;
  capacity_ = bytes_ = 0;
  root_ = free_ = kNone;
  fresh_ = 1;
}

void RegionList::copy_into_forks(bool copy) const {
  if (nodes_) sys::madvise(nodes_, bytes_, copy ? MADV_KEEPONFORK : MADV_WIPEONFORK);
}

void RegionList::clear() {
  root_ = kNone;
  free_ = kNone;
  fresh_ = 1;
}

uint32_t RegionList::next_priority() {
  // xorshift32: only needs to be unrelated to the addresses.
  uint32_t x = seed_;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  seed_ = x;
  return x;
}

RegionList::Pos RegionList::allocate() {
  if (free_ != kNone) {
    const Pos p = free_;
    free_ = nodes_[p].left;
    return p;
  }
  if (fresh_ <= capacity_) return fresh_++;
  return kNone;
}

RegionList::Pos RegionList::first() const {
  Pos p = root_;
  if (p == kNone) return kNone;
  while (nodes_[p].left != kNone) p = nodes_[p].left;
  return p;
}

RegionList::Pos RegionList::next(Pos p) const {
  if (nodes_[p].right != kNone) {
    p = nodes_[p].right;
    while (nodes_[p].left != kNone) p = nodes_[p].left;
    return p;
  }
  Pos up = nodes_[p].parent;
  while (up != kNone && nodes_[up].right == p) {
    p = up;
    up = nodes_[p].parent;
  }
  return up;
}

RegionList::Pos RegionList::prev(Pos p) const {
  if (nodes_[p].left != kNone) {
    p = nodes_[p].left;
    while (nodes_[p].right != kNone) p = nodes_[p].right;
    return p;
  }
  Pos up = nodes_[p].parent;
  while (up != kNone && nodes_[up].left == p) {
    p = up;
    up = nodes_[p].parent;
  }
  return up;
}

RegionList::Pos RegionList::first_ending_after(uintptr_t addr) const {
  Pos best = kNone;
  for (Pos p = root_; p != kNone;) {
    if (nodes_[p].r.end > addr) {
      best = p;
      p = nodes_[p].left;
    } else {
      p = nodes_[p].right;
    }
  }
  return best;
}

RegionList::Pos RegionList::find_pos(uintptr_t addr) const {
  const Pos p = first_ending_after(addr);
  return p != kNone && nodes_[p].r.start <= addr ? p : kNone;
}

RegionList::Pos RegionList::pos_at(size_t i) const {
  Pos p = root_;
  while (p != kNone) {
    const size_t left = nodes_[nodes_[p].left].count;
    if (i < left) {
      p = nodes_[p].left;
    } else if (i == left) {
      return p;
    } else {
      i -= left + 1;
      p = nodes_[p].right;
    }
  }
  return kNone;  // out of range: the nil node
}

size_t RegionList::rank(Pos p) const {
  size_t r = nodes_[nodes_[p].left].count;
  for (Pos up = nodes_[p].parent; up != kNone; p = up, up = nodes_[up].parent) {
    if (nodes_[up].right == p) r += nodes_[nodes_[up].left].count + 1;
  }
  return r;
}

long RegionList::find(uintptr_t addr) const {
  const Pos p = find_pos(addr);
  return p == kNone ? -1 : long(rank(p));
}

size_t RegionList::lower_bound(uintptr_t addr) const {
  const Pos p = first_ending_after(addr);
  return p == kNone ? size() : rank(p);
}

bool RegionList::overlaps_any(uintptr_t s, uintptr_t e) const {
  const Pos p = first_ending_after(s);
  return p != kNone && nodes_[p].r.start < e;
}

void RegionList::replace_child(Pos parent, Pos old_child, Pos new_child) {
  if (parent == kNone) {
    root_ = new_child;
  } else if (nodes_[parent].left == old_child) {
    nodes_[parent].left = new_child;
  } else {
    nodes_[parent].right = new_child;
  }
  if (new_child != kNone) nodes_[new_child].parent = parent;
}

void RegionList::rotate_up(Pos c) {
  // c takes its parent's place; the parent becomes c's child on the other side.
  const Pos p = nodes_[c].parent;
  const Pos grand = nodes_[p].parent;
  if (nodes_[p].left == c) {
    const Pos moved = nodes_[c].right;
    nodes_[p].left = moved;
    if (moved != kNone) nodes_[moved].parent = p;
    nodes_[c].right = p;
  } else {
    const Pos moved = nodes_[c].left;
    nodes_[p].right = moved;
    if (moved != kNone) nodes_[moved].parent = p;
    nodes_[c].left = p;
  }
  nodes_[p].parent = c;
  replace_child(grand, p, c);
  nodes_[c].count = nodes_[p].count;
  update_count(p);
}

bool RegionList::insert(const Region& r) {
  if (!nodes_ || r.start >= r.end) return false;
  if (overlaps_any(r.start, r.end)) return false;  // a caller bug
  const Pos n = allocate();
  if (n == kNone) return false;
  Node& node = nodes_[n];
  node.r = r;
  node.left = node.right = kNone;
  node.count = 1;
  node.priority = next_priority();
  // Down to a leaf by address, counting the new node in every subtree on the way.
  Pos parent = kNone;
  for (Pos p = root_; p != kNone;) {
    parent = p;
    nodes_[p].count++;
    p = r.start < nodes_[p].r.start ? nodes_[p].left : nodes_[p].right;
  }
  node.parent = parent;
  if (parent == kNone) {
    root_ = n;
  } else if (r.start < nodes_[parent].r.start) {
    nodes_[parent].left = n;
  } else {
    nodes_[parent].right = n;
  }
  // Then up by priority.
  while (node.parent != kNone && nodes_[node.parent].priority < node.priority) rotate_up(n);
  return true;
}

void RegionList::erase(Pos p) {
  // Down by priority until at most one child is left, then spliced out.
  while (nodes_[p].left != kNone && nodes_[p].right != kNone) {
    const Pos l = nodes_[p].left, r = nodes_[p].right;
    rotate_up(nodes_[l].priority > nodes_[r].priority ? l : r);
  }
  const Pos child = nodes_[p].left != kNone ? nodes_[p].left : nodes_[p].right;
  const Pos parent = nodes_[p].parent;
  replace_child(parent, p, child);
  for (Pos up = parent; up != kNone; up = nodes_[up].parent) nodes_[up].count--;
  nodes_[p].left = free_;
  free_ = p;
}

namespace {

bool continues(const Region& a, const Region& b, uint64_t page_size) {
  if (a.end != b.start || a.id != b.id || a.source != b.source || a.prot != b.prot || a.flags != b.flags ||
      a.site != b.site || a.ordinal != b.ordinal || a.alloc_length != b.alloc_length) {
    return false;
  }
  return a.source == Region::kZeroSource || a.source_page + (a.end - a.start) / page_size == b.source_page;
}

}  // namespace

void RegionList::merge_neighbours(uintptr_t start, uint64_t page_size) {
  Pos p = find_pos(start);
  if (p == kNone) return;
  const Pos after = next(p);
  if (after != kNone && continues(nodes_[p].r, nodes_[after].r, page_size)) {
    nodes_[p].r.end = nodes_[after].r.end;
    erase(after);
  }
  const Pos before = prev(p);
  if (before != kNone && continues(nodes_[before].r, nodes_[p].r, page_size)) {
    nodes_[before].r.end = nodes_[p].r.end;
    erase(p);
  }
}

bool RegionList::set_source(uintptr_t start, uintptr_t end, int32_t source, uint64_t source_page) {
  const Pos p = find_pos(start);
  if (p == kNone || nodes_[p].r.start != start || nodes_[p].r.end != end) return false;
  nodes_[p].r.source = source;
  nodes_[p].r.source_page = source_page;
  return true;
}

bool RegionList::extend(uintptr_t start, uintptr_t old_end, uintptr_t new_end) {
  const Pos p = find_pos(old_end - 1);
  if (p == kNone || nodes_[p].r.end != old_end || nodes_[p].r.start > start) return false;
  const Pos after = next(p);
  if (after != kNone && nodes_[after].r.start < new_end) return false;
  nodes_[p].r.end = new_end;
  return true;
}

bool RegionList::well_formed() const {
  if (!nodes_) return true;
  if (nodes_[0].count != 0 || (root_ != kNone && nodes_[root_].parent != kNone)) return false;
  // In order, iteratively: every node's links, count and priority, and the order of the regions.
  size_t seen = 0;
  const Region* last = nullptr;
  for (Pos p = first(); p != kNone; p = next(p)) {
    const Node& n = nodes_[p];
    if (n.r.start >= n.r.end) return false;
    if (last && last->end > n.r.start) return false;
    last = &n.r;
    if (n.count != 1 + nodes_[n.left].count + nodes_[n.right].count) return false;
    if (n.left != kNone && (nodes_[n.left].parent != p || nodes_[n.left].priority > n.priority)) return false;
    if (n.right != kNone && (nodes_[n.right].parent != p || nodes_[n.right].priority > n.priority)) return false;
    if (rank(p) != seen) return false;
    if (++seen > capacity_) return false;
  }
  if (seen != size()) return false;
  size_t free_nodes = 0;
  for (Pos f = free_; f != kNone; f = nodes_[f].left) {
    if (++free_nodes > capacity_) return false;
  }
  return seen + free_nodes == size_t(fresh_ - 1);
}

}  // namespace uffdlazy
