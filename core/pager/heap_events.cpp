// The program break: malloc's main heap grows and shrinks with brk (through sbrk). The kernel
// reports neither growth nor a new heap mapping, so a grown heap is registered here; a shrink is
// an UNMAP event the monitor applies like any other.
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

void break_moved(uintptr_t old_break, uintptr_t new_break) {
  if (!mine() || !old_break) return;
  // The heap mapping ends at the break rounded up to a page.
  const uintptr_t old_end = align_up(old_break, g.page_size), new_end = align_up(new_break, g.page_size);
  if (new_end <= old_end) return;
  // Registered in one piece with the heap below when it continues it, so a heap grown a page at a
  // time stays one region.
  register_unmapped_memory(old_end, new_end, PROT_READ | PROT_WRITE, true);
}

}  // namespace uffdlazy::pager
