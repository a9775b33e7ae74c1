// Memory the program has without having mapped it where the shim could see: the anonymous part
// (.bss) of the executable and of libraries (the kernel maps the executable's; ld.so maps the
// others with its own private mmap), and the brk heap as it stood when the shim started.
// Registered once at start, and for the objects each dlopen brings in.
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/base/blocked_section.h"
#include "core/base/proc_maps.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

constexpr size_t kMaxCandidates = 128;

struct Candidate {
  uintptr_t start, end;
  int prot;
  bool heap;
};

// Touched only under g_adopt_lock: several threads may dlopen at once.
struct AdoptScan {
  const AddressRange* wanted;
  size_t wanted_count;
  bool with_heap;
  Candidate found[kMaxCandidates];
  size_t count;
};
constinit SpinLock g_adopt_lock;
constinit AdoptScan g_scan = {};
char g_maps_buf[16 * 1024];

int prot_of(const MapsEntry& m) {
  return (m.read ? PROT_READ : 0) | (m.write ? PROT_WRITE : 0) | (m.exec ? PROT_EXEC : 0);
}

bool is_own_memory(uintptr_t s, uintptr_t e) {
  for (size_t i = 0; i < g.own_count; i++) {
    if (g.own[i].start < e && s < g.own[i].end) return true;
  }
  return false;
}

void consider(const char* line, size_t n, void*) {
  MapsEntry m;
  if (!parse_maps_line(line, n, &m) || !m.private_anonymous() || !(m.read || m.write)) return;
  AdoptScan& scan = g_scan;
  auto add = [&](uintptr_t s, uintptr_t e, bool heap) {
    if (s >= e || scan.count >= kMaxCandidates || is_own_memory(s, e)) return;
    if (!heap && e - s < g.cfg.min_size) return;
    scan.found[scan.count++] = Candidate{s, e, prot_of(m), heap};
  };
  if (m.path_is("[heap]")) {
    if (scan.with_heap && heap_big_enough(m.end)) add(m.start, m.end, true);
    return;
  }
  for (size_t i = 0; i < scan.wanted_count; i++) {
    const AddressRange& w = scan.wanted[i];
    const uintptr_t s = align_up(w.start > m.start ? w.start : m.start, g.page_size);
    const uintptr_t e = align_down(w.end < m.end ? w.end : m.end, g.page_size);
    add(s, e, false);
  }
}

// As in mapping_events.cpp: the program may have closed (or replaced) our userfaultfd.
bool descriptor_usable() {
  if (g.descriptor_lost.load(std::memory_order_relaxed)) return false;
  if (g.uffd.still_open()) return true;
  g.descriptor_lost.store(true, std::memory_order_relaxed);
  return false;
}

// A dlopen rescans every object: what an earlier scan registered is still registered.
bool already_registered(uintptr_t s) {
  TableSection section;
  Region r;
  return g.table.lookup(s, &r);
}

}  // namespace

bool register_unmapped_memory(uintptr_t s, uintptr_t e, int prot, bool extend) {
  if (!mine() || s >= e || g.monitor.failed()) return false;
  // mlockall(MCL_FUTURE): the kernel populates and locks it (program_claims.cpp).
  if (g.locked_future.load(std::memory_order_relaxed)) return false;
  if (!descriptor_usable()) {
    MonitorCounters::bump(g.counters.unregistered);
    return false;
  }
  bool inserted = false, grown = false;
  uint32_t id = 0;
  {
    TableSection section;
    g.table.mapped(s, e);
    Region before = {};
    if (extend && g.table.lookup(s - 1, &before) && before.end == s && before.source == Region::kZeroSource &&
        before.prot == prot && g.table.grew(before.start, s, e)) {
      grown = true;
    } else {
      Region r = {};
      r.start = s;
      r.end = e;
      r.source = Region::kZeroSource;
      r.unrestorable = true;
      r.prot = prot;
      r.flags = MAP_PRIVATE | MAP_ANONYMOUS;
      r.ordinal = CallSiteTable::kNoOrdinal;
      r.alloc_length = e - s;
      r.id = g.table.next_id();
      id = r.id;
      inserted = g.table.insert(r);
    }
  }
  if (!inserted && !grown) return false;
  if (g.uffd.register_missing(s, e - s) < 0) {
    TableSection section;
    g.table.forget(s, e);
    g.counters.refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (g.monitor.failed()) {
    g.uffd.unregister(s, e - s);
    return false;
  }
  if (inserted) {
    g.counters.regions.fetch_add(1, std::memory_order_relaxed);
    g_stats.region_registered(id, s, e - s, extend ? "heap" : "bss");
  }
  return true;
}

void adopt_existing(const AddressRange* wanted, size_t n, bool with_heap) {
  if (!mine()) return;
  BlockedSection section(g_adopt_lock);
  AdoptScan& scan = g_scan;
  scan.wanted = wanted;
  scan.wanted_count = n;
  scan.with_heap = with_heap;
  scan.count = 0;
  // Collected first, registered after: registering changes the mappings being read.
  if (for_each_line("/proc/self/maps", g_maps_buf, sizeof g_maps_buf, consider, nullptr) < 0) return;
  for (size_t i = 0; i < scan.count; i++) {
    const Candidate& c = scan.found[i];
    if (already_registered(c.start)) continue;
    register_unmapped_memory(c.start, c.end, c.prot, c.heap);
  }
}

}  // namespace uffdlazy::pager
