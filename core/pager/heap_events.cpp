// The program break: malloc's main heap grows and shrinks with brk (through sbrk). The kernel
// reports neither growth nor a new heap mapping, so a grown heap is registered here; a shrink is
// an UNMAP event the monitor applies like any other. UFFDLAZY_MIN_SIZE applies to the heap as a
// whole: it is registered, all of it, once it has grown that large.
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

bool registered_at(uintptr_t a) {
  TableSection section;
  Region r;
  return g.table.lookup(a, &r);
}

// start_brk, field 47 of /proc/self/stat (after the command name, which may hold spaces).
uintptr_t read_start_brk() {
  char buf[1024];
  const long fd = sys::openat(AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const long n = sys::read(int(fd), buf, sizeof buf - 1);
  sys::close(int(fd));
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = strrchr(buf, ')');
  if (!p) return 0;
  int field = 2;
  for (; *p && field < 47; p++) {
    if (*p == ' ') field++;
  }
  uintptr_t v = 0;
  for (; *p >= '0' && *p <= '9'; p++) v = v * 10 + uintptr_t(*p - '0');
  return v;
}

}  // namespace

uintptr_t heap_start() {
  if (!g.heap_start) g.heap_start = read_start_brk();
  return g.heap_start;
}

bool heap_big_enough(uintptr_t end) {
  const uintptr_t start = heap_start();
  return start && end > start && end - start >= g.cfg.min_size;
}

void break_moved(uintptr_t old_break, uintptr_t new_break) {
  // Once the program took part of the heap for itself (program_claims.cpp), the heap is the kernel's.
  if (!mine() || !old_break || g.heap_aside.load(std::memory_order_relaxed)) return;
  // The heap mapping ends at the break rounded up to a page.
  const uintptr_t old_end = align_up(old_break, g.page_size), new_end = align_up(new_break, g.page_size);
  if (new_end <= old_end) return;
  if (old_end > heap_start() && registered_at(old_end - 1)) {
    // Registered in one piece with the heap below, so a heap grown a page at a time stays one region.
    register_unmapped_memory(old_end, new_end, PROT_READ | PROT_WRITE, true);
  } else if (heap_big_enough(new_end)) {
    // The heap as a whole has reached the minimum size (or a forked child's first growth): all of it.
    register_unmapped_memory(heap_start(), new_end, PROT_READ | PROT_WRITE, true);
  }
}

}  // namespace uffdlazy::pager
