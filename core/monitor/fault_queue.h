// Faults the monitor has read but not answered yet, one entry per page.
//
// The kernel hands out every pending fault before any event, and while an event is unread every
// fill fails with EAGAIN. So the monitor must be able to keep reading past any number of faults to
// reach the event that unblocks them: the queue never stops it from reading. It holds one entry
// per distinct page (a fill wakes every thread waiting on its page, so a second fault on a queued
// page, from another thread or repeated by the kernel, needs nothing more), which bounds it by the
// number of threads that can be blocked at once. Should even that overflow, the fault that does
// not fit is not kept, and the monitor wakes every waiting thread once the queue has drained
// (their threads simply fault again). Nothing is ever dropped silently.
//
// Monitor thread only. Memory: mapped once at init (aside), never grown.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

struct PendingFault {
  uint64_t address;  // the faulting address as the kernel reported it
  uint64_t flags;    // UFFD_PAGEFAULT_FLAG_*
  uint32_t tid;      // 0 without UFFD_FEATURE_THREAD_ID
  uint32_t repeats;  // further faults on the same page merged into this entry
  uint64_t read_ns;  // when the monitor read it
};

class FaultQueue {
 public:
  enum class Added { kQueued, kMerged, kFull };

  bool init(size_t capacity, uint64_t page_size);
  void release();

  // Queues a fault, or merges it with the queued fault on the same page.
  Added add(const PendingFault& f);
  bool empty() const { return head_ == len_; }
  size_t size() const { return len_ - head_; }
  size_t capacity() const { return capacity_; }
  PendingFault& front() { return items_[head_]; }
  // Done with the front entry; when the queue empties it is reset for reuse.
  void pop();
  void clear();

 private:
  uint32_t* slot_for(uint64_t page, bool* found);
  void compact();
  void clear_index();

  PendingFault* items_ = nullptr;
  uint32_t* slots_ = nullptr;    // open addressing over pages: queue index + 1, 0 = empty
  uint32_t* slot_of_ = nullptr;  // where each queued entry's slot is, to clear without probing
  size_t capacity_ = 0;
  size_t slot_mask_ = 0;
  size_t head_ = 0;
  size_t len_ = 0;
  uint64_t page_mask_ = ~uint64_t(4095);
  void* mem_ = nullptr;
  size_t mem_bytes_ = 0;
};

}  // namespace uffdlazy
