#include "core/monitor/fault_queue.h"

#include <sys/mman.h>

#include "core/base/align.h"
#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

uint64_t hash_page(uint64_t page) {
  uint64_t z = page * 0x9e3779b97f4a7c15ull;
  return z ^ (z >> 29);
}

}  // namespace

bool FaultQueue::init(size_t capacity, uint64_t page_size) {
  release();
  size_t slots = 16;
  while (slots < 2 * capacity) slots <<= 1;
  const size_t bytes =
      align_up(capacity * sizeof(PendingFault) + (slots + capacity) * sizeof(uint32_t), 4096);
  long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (sys::failed(m)) return false;
  mem_ = reinterpret_cast<void*>(m);
  mem_bytes_ = bytes;
  items_ = static_cast<PendingFault*>(mem_);
  slots_ = reinterpret_cast<uint32_t*>(items_ + capacity);
  slot_of_ = slots_ + slots;
  capacity_ = capacity;
  slot_mask_ = slots - 1;
  page_mask_ = ~(page_size - 1);
  head_ = len_ = 0;
  return true;
}

void FaultQueue::release() {
  if (mem_) sys::munmap(mem_, mem_bytes_);
  mem_ = nullptr;
  items_ = nullptr;
  slots_ = nullptr;
  slot_of_ = nullptr;
  capacity_ = head_ = len_ = 0;
}

uint32_t* FaultQueue::slot_for(uint64_t page, bool* found) {
  for (size_t i = hash_page(page) & slot_mask_;; i = (i + 1) & slot_mask_) {
    const uint32_t s = slots_[i];
    if (s == 0) {
      *found = false;
      return &slots_[i];
    }
    if ((items_[s - 1].address & page_mask_) == page) {
      *found = true;
      return &slots_[i];
    }
  }
}

FaultQueue::Added FaultQueue::add(const PendingFault& f) {
  bool found;
  uint32_t* slot = slot_for(f.address & page_mask_, &found);
  if (found && *slot - 1 >= head_) {
    // Still waiting for its answer, which wakes every thread on the page.
    PendingFault& q = items_[*slot - 1];
    q.repeats++;
    q.flags |= f.flags;  // a write among them: answer as a write
    return Added::kMerged;
  }
  // New, or a page already answered: that may be a duplicate message, or a new fault after the
  // page was dropped again. Either way it is answered (a duplicate finds the page present).
  if (len_ == capacity_) {
    if (head_ == 0) return Added::kFull;
    compact();
    slot = slot_for(f.address & page_mask_, &found);
  }
  items_[len_] = f;
  items_[len_].repeats = 0;
  slot_of_[len_] = uint32_t(slot - slots_);
  *slot = uint32_t(++len_);
  return Added::kQueued;
}

void FaultQueue::compact() {
  // Under steady load the queue may never drain: move the waiting entries to the front and index
  // them again; answered entries are forgotten.
  clear_index();
  const size_t n = len_ - head_;
  for (size_t i = 0; i < n; i++) items_[i] = items_[head_ + i];
  head_ = 0;
  len_ = 0;
  for (size_t i = 0; i < n; i++) {
    bool found;
    uint32_t* slot = slot_for(items_[i].address & page_mask_, &found);
    slot_of_[i] = uint32_t(slot - slots_);
    *slot = uint32_t(i + 1);
    len_ = i + 1;
  }
}

void FaultQueue::clear_index() {
  // Entries are never removed one by one, so each slot is still where it was put.
  for (size_t i = 0; i < len_; i++) slots_[slot_of_[i]] = 0;
}

void FaultQueue::pop() {
  if (++head_ == len_) clear();
}

void FaultQueue::clear() {
  clear_index();
  head_ = len_ = 0;
}

}  // namespace uffdlazy
