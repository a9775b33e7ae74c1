#include "core/monitor/region_list.h"

#include <cstring>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

bool RegionList::init(size_t capacity) {
  size_t bytes = capacity * sizeof(Region);
  long r = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(r)) return false;
  items_ = reinterpret_cast<Region*>(r);
  capacity_ = capacity;
  size_ = 0;
  return true;
}

void RegionList::release() {
  if (items_) sys::munmap(items_, capacity_ * sizeof(Region));
  items_ = nullptr;
  size_ = capacity_ = 0;
}

size_t RegionList::lower_bound(uintptr_t addr) const {
  size_t lo = 0, hi = size_;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (items_[mid].end <= addr) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

long RegionList::find(uintptr_t addr) const {
  size_t i = lower_bound(addr);
  if (i < size_ && items_[i].contains(addr)) return long(i);
  return -1;
}

bool RegionList::overlaps_any(uintptr_t s, uintptr_t e) const {
  size_t i = lower_bound(s);
  return i < size_ && items_[i].start < e;
}

bool RegionList::insert_at(size_t i, const Region& r) {
  if (size_ == capacity_) return false;
  memmove(&items_[i + 1], &items_[i], (size_ - i) * sizeof(Region));
  items_[i] = r;
  size_++;
  return true;
}

void RegionList::erase_at(size_t i) {
  memmove(&items_[i], &items_[i + 1], (size_ - i - 1) * sizeof(Region));
  size_--;
}

bool RegionList::insert(const Region& r) {
  size_t i = lower_bound(r.start);
  if (i < size_ && items_[i].start < r.end) return false;  // overlap: a caller bug
  return insert_at(i, r);
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
  long found = find(start);
  if (found < 0) return;
  size_t i = size_t(found);
  if (i + 1 < size_ && continues(items_[i], items_[i + 1], page_size)) {
    items_[i].end = items_[i + 1].end;
    erase_at(i + 1);
  }
  if (i > 0 && continues(items_[i - 1], items_[i], page_size)) {
    items_[i - 1].end = items_[i].end;
    erase_at(i);
  }
}

bool RegionList::set_source(uintptr_t start, uintptr_t end, int32_t source, uint64_t source_page) {
  const long i = find(start);
  if (i < 0 || items_[i].start != start || items_[i].end != end) return false;
  items_[i].source = source;
  items_[i].source_page = source_page;
  return true;
}

bool RegionList::extend(uintptr_t start, uintptr_t old_end, uintptr_t new_end) {
  long i = find(old_end - 1);
  if (i < 0 || items_[i].end != old_end || items_[i].start > start) return false;
  if (size_t(i + 1) < size_ && items_[i + 1].start < new_end) return false;
  items_[i].end = new_end;
  return true;
}

}  // namespace uffdlazy
