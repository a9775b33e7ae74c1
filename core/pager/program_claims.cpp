// Ranges the program takes for itself: its own userfaultfd registers them, it locks them, or it
// reads and writes them through /proc/self/mem. The monitor does the work (monitor_claims.cpp);
// this decides when there is any to do. Runs on the program's threads, inside the interposed calls.
//
// A range the shim steps aside from is never taken back: not when the program unregisters it,
// nor when it unlocks it. Once the program unmaps it (or maps something else over it), a new
// mapping there is a new mapping, registered as usual.
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

// Whether any of [s, e) is registered; notes when that includes the brk heap's region.
bool registered_in(uintptr_t s, uintptr_t e, bool* heap) {
  TableSection section;
  if (!g.table.live().overlaps_any(s, e)) return false;
  Region r;
  *heap = g.heap_start && g.table.lookup(g.heap_start, &r) && r.overlaps(s, e);
  return true;
}

void step_aside(uintptr_t s, uintptr_t e) {
  if (!mine() || s >= e) return;
  bool heap = false;
  if (!registered_in(s, e, &heap)) return;
  // Before the heap's region goes: a brk that grows it meanwhile must not register it again.
  if (heap) g.heap_aside.store(true, std::memory_order_relaxed);
  g.monitor.step_aside(s, e);
}

}  // namespace

void stepping_aside(void* addr, size_t len) {
  const uintptr_t s = align_down(reinterpret_cast<uintptr_t>(addr), g.page_size);
  const uintptr_t e = reinterpret_cast<uintptr_t>(addr) + len;
  if (e < s) return;  // wraps: the kernel refuses it
  step_aside(s, align_up(e, g.page_size));
}

bool locking_all(int flags) {
  // As the kernel does: each mlockall sets the future behaviour anew. Set before the call, so that
  // no mapping made meanwhile by another thread is registered locked.
  const bool was = g.locked_future.exchange(flags & MCL_FUTURE, std::memory_order_relaxed);
  if (flags & MCL_CURRENT) step_aside(0, UINTPTR_MAX);
  return was;
}

void future_locking(bool on) { g.locked_future.store(on, std::memory_order_relaxed); }

bool making_present(uintptr_t start, uintptr_t end) {
  if (!mine() || start >= end) return false;
  {
    // The kernel stopped at `start`: only a page of ours there is ours to put in place.
    TableSection section;
    Region r;
    if (!g.table.lookup(align_down(start, g.page_size), &r)) return false;
  }
  g.monitor.make_present(start, end);
  return true;
}

}  // namespace uffdlazy::pager
