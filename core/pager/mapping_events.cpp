// What the program's successful mmap/mremap/munmap/madvise calls mean for the region table and
// the userfaultfd. Runs on the program's threads, inside the interposed calls.
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"
#include "core/pager/restore_prefetch.h"

namespace uffdlazy::pager {

namespace {

bool lazily_paged_kind(int flags) {
  if (!(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE) return false;
  // Locked memory is populated by the kernel, now and whenever it grows (program_claims.cpp).
  if ((flags & MAP_LOCKED) || g.locked_future.load(std::memory_order_relaxed)) return false;
  return !(flags & (MAP_HUGETLB | MAP_GROWSDOWN));
}

// The userfaultfd may be used from this thread: the program has not closed (or replaced) it.
bool descriptor_usable() {
  if (g.descriptor_lost.load(std::memory_order_relaxed)) return false;
  if (g.uffd.still_open()) return true;
  g.descriptor_lost.store(true, std::memory_order_relaxed);
  return false;
}

// Made by the C library itself on the program's behalf (see note_allocator_code).
bool made_by_allocator(const void* caller) {
  const uintptr_t pc = reinterpret_cast<uintptr_t>(caller);
  for (size_t i = 0; i < g.allocator_code_count; i++) {
    if (pc >= g.allocator_code[i].start && pc < g.allocator_code[i].end) return true;
  }
  return false;
}

}  // namespace

void mapped(void* addr, size_t len, int prot, int flags, int fd, const void* caller) {
  (void)fd;
  bool want = lazily_paged_kind(flags) && len >= g.cfg.min_size && !g.monitor.failed();
  // Most mappings are not for us (small, shared, file-backed). Unless call sites are counted (a
  // recording or a restore numbers every mapping of a site), they cost nothing more: the table
  // needs no word about them (a stale entry they overlap goes with its own pending event).
  if (!want && !g_sites) return;
  if (!mine()) return;
  uintptr_t s = reinterpret_cast<uintptr_t>(addr);
  uintptr_t e = s + align_up(len, g.page_size);
  // Identity (recording or restoring only): which call site made this mapping, and the how-many-th
  // of all the mappings that site made (whatever their size or kind, so that the numbering does
  // not depend on the shim's settings).
  uint64_t site = 0;
  uint32_t ordinal = 0;
  int32_t source = Region::kZeroSource;
  // Thread stacks (glibc expects a new stack's descriptor area zeroed) and the allocator's memory
  // must read zeros when fresh: never recorded, never restored.
  const bool unrestorable = (flags & MAP_STACK) || made_by_allocator(caller);
  if (g_sites) {
    SiteId id = g_sites->record(caller, &ordinal);
    site = CallSiteTable::pack(id);
    if (want && !unrestorable && g_restore && g_restore->ready()) {
      source = g_restore->match(s, len, prot, flags, id, ordinal, *g_sites.get());
    }
  }
  if (want && !descriptor_usable()) {
    want = false;
    MonitorCounters::bump(g.counters.unregistered);
  }
  if (!want) return;
  bool inserted = false;
  uint32_t id = 0;
  {
    TableSection section;
    g.table.mapped(s, e);
    {
      Region r = {};
      r.start = s;
      r.end = e;
      r.source = source;
      r.source_page = 0;
      r.prot = prot;
      r.flags = flags;
      r.site = site;
      r.ordinal = ordinal;
      r.alloc_length = len;
      r.unrestorable = unrestorable;
      r.id = g.table.next_id();
      id = r.id;
      inserted = g.table.insert(r);
    }
  }
  if (!inserted) return;
  // Registered after the table knows the region, so the first fault always finds it.
  if (g.uffd.register_missing(s, e - s) < 0) {
    TableSection section;
    g.table.forget(s, e);
    g.counters.refused.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (g.monitor.failed()) {
    // The monitor gave up while we registered: nothing will answer faults here.
    g.uffd.unregister(s, e - s);
    return;
  }
  g.counters.regions.fetch_add(1, std::memory_order_relaxed);
  g_stats.region_registered(id, s, e - s, (prot & (PROT_READ | PROT_WRITE)) ? "anonymous" : "anonymous reservation");
  // The background fill has new pages to install (and the working set, if it names this region).
  if (source != Region::kZeroSource) region_restored(source);
  // A fork is being prepared: its owed pages were filled already, and a child cloned once this
  // mmap has returned must find this region's pages in place as well.
  if (source != Region::kZeroSource && g.forks_in_progress.load(std::memory_order_acquire) > 0) {
    g.monitor.fill_all_owed();
  }
}

void remapped(void* old_addr, size_t old_len, void* new_addr, size_t new_len, int flags) {
  if (!mine()) return;
  const uintptr_t from = reinterpret_cast<uintptr_t>(old_addr), to = reinterpret_cast<uintptr_t>(new_addr);
  const uint64_t old_bytes = align_up(old_len, g.page_size), new_bytes = align_up(new_len, g.page_size);
  // A move is reported by the kernel (REMAP, then UNMAP of the old range unless DONTUNMAP);
  // growing is not: the grown part is registered with the rest of the VMA and must join its region.
  if (to == from) {
    if (new_bytes <= old_bytes) return;
    {
      // Not a region of ours at all: nothing to wait for.
      TableSection section;
      Region r;
      if (!g.table.lookup(from + old_bytes - 1, &r) || r.end != from + old_bytes) return;
    }
    // The region that ends there might be one the kernel has already unmapped (its event read but
    // not yet applied): once events are in, only a region of ours still ends there.
    g.monitor.sync();
    TableSection section;
    g.table.grew(from, from + old_bytes, from + new_bytes);
    return;
  }
  const bool dontunmap = flags & MREMAP_DONTUNMAP;
  if (!dontunmap && new_bytes <= old_bytes) return;  // the REMAP says all there is to say
  // The REMAP was read before mremap returned, but perhaps not yet applied: wait until it is, so
  // that the table tells for sure whether the move was of a region of ours.
  g.monitor.sync();
  TableSection section;
  Region moved = {};
  if (!g.table.note_applied_move(from, to, old_bytes, new_bytes, dontunmap, &moved)) return;
  if (dontunmap) {
    // The old range stays mapped, registered and empty: a region of its own, reading zeros, with
    // the moved region's attributes.
    Region r = {};
    r.start = from;
    r.end = from + old_bytes;
    r.source = Region::kZeroSource;
    r.prot = moved.prot;
    r.flags = moved.flags;
    r.id = g.table.next_id();
    g.table.mapped(r.start, r.end);
    g.table.insert(r);
  }
}

void before_dropping_memory() {
  if (!g.monitor.fills_stalled()) return;  // the common case: one load
  // A forked child that started no monitor of its own inherited the flag, not the monitor.
  if (!mine()) return;
  g.monitor.wait_while_fills_stalled();
}

void unmapped(void*, size_t) {}
void advised(void*, size_t, int) {}

}  // namespace uffdlazy::pager
