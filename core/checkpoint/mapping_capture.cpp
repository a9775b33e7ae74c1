#include "core/checkpoint/mapping_capture.h"

#include <cstring>
#include <new>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/blocked_section.h"
#include "core/base/pagemap_scan.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/proc_file.h"
#include "core/checkpoint/shared_mapping_capture.h"
#include "core/snapshot/checksum.h"

namespace uffdlazy::ckpt {

namespace {

// VmFlags of interest (proc(5), smaps).
enum : uint32_t {
  kVmMayWrite = 1u << 0,      // mw
  kVmUffdMissing = 1u << 1,   // um
  kVmDontCopy = 1u << 2,      // dc
  kVmWipeOnFork = 1u << 3,    // wf
  kVmIo = 1u << 4,            // io
  kVmPfnMap = 1u << 5,        // pf
  kVmHugetlb = 1u << 6,       // ht
  kVmGrowsDown = 1u << 7,     // gd
  kVmShadowStack = 1u << 8,   // ss
  kVmUffdOther = 1u << 9,     // ui (registrations that are not ours)
  kVmUffdWp = 1u << 10,       // uw: the shim's when it tracks writes (and has um there), else not
  kVmNoReserve = 1u << 11,    // nr
  kVmSequential = 1u << 12,   // sr
  kVmRandom = 1u << 13,       // rr
  kVmDontDump = 1u << 14,     // dd
  kVmHugePage = 1u << 15,     // hg
  kVmNoHugePage = 1u << 16,   // nh
  kVmMergeable = 1u << 17,    // mg
};

struct Vma {
  uint64_t start, end, offset, dev, ino;
  uint32_t prot;
  uint32_t vmflags;
  bool shared;
  snap::StringRef path;  // in the mappings table's strings
};

constexpr uint32_t kMaxVmas = 1u << 17;
constexpr uint32_t kMaxLazy = 1u << 16;
constexpr uint32_t kMaxPlan = 1u << 18;

struct Scratch {
  Vma* vmas = nullptr;
  uint32_t vma_count = 0;
  Region* lazy = nullptr;
  uint32_t lazy_count = 0;
  PlannedRegion* plan = nullptr;
  uint32_t plan_count = 0;
  LineReader reader;
};
constinit Scratch* g_scratch = nullptr;

void* map_scratch(uint64_t bytes) {
  long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return sys::failed(m) ? nullptr : reinterpret_cast<void*>(m);
}

// new_encode_dev, as stat(2) reports st_dev on Linux.
uint64_t encode_dev(uint64_t major, uint64_t minor) { return (minor & 0xff) | (major << 8) | ((minor & ~0xffull) << 12); }

bool parse_header(const char* line, size_t n, Vma* v, const char** path, size_t* path_len) {
  const char* p = line;
  const char* end = line + n;
  v->start = parse_number(&p, end, 16);
  if (p >= end || *p++ != '-') return false;
  v->end = parse_number(&p, end, 16);
  if (p + 5 > end || *p++ != ' ') return false;
  v->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) | (p[2] == 'x' ? PROT_EXEC : 0);
  v->shared = p[3] == 's';
  p += 4;
  while (p < end && *p == ' ') p++;
  v->offset = parse_number(&p, end, 16);
  while (p < end && *p == ' ') p++;
  const uint64_t major = parse_number(&p, end, 16);
  if (p < end && *p == ':') p++;
  const uint64_t minor = parse_number(&p, end, 16);
  v->dev = encode_dev(major, minor);
  while (p < end && *p == ' ') p++;
  v->ino = parse_number(&p, end, 10);
  while (p < end && *p == ' ') p++;
  *path = p;
  *path_len = size_t(end - p);
  v->vmflags = 0;
  return true;
}

uint32_t parse_vmflags(const char* p, const char* end) {
  uint32_t f = 0;
  while (p + 1 < end) {
    while (p < end && *p == ' ') p++;
    if (p + 1 >= end) break;
    const char a = p[0], b = p[1];
    auto is = [&](const char* two) { return a == two[0] && b == two[1]; };
    if (is("mw")) f |= kVmMayWrite;
    else if (is("um")) f |= kVmUffdMissing;
    else if (is("uw")) f |= kVmUffdWp;
    else if (is("ui")) f |= kVmUffdOther;
    else if (is("dc")) f |= kVmDontCopy;
    else if (is("wf")) f |= kVmWipeOnFork;
    else if (is("io")) f |= kVmIo;
    else if (is("pf")) f |= kVmPfnMap;
    else if (is("ht")) f |= kVmHugetlb;
    else if (is("gd")) f |= kVmGrowsDown;
    else if (is("ss")) f |= kVmShadowStack;
    else if (is("nr")) f |= kVmNoReserve;
    else if (is("sr")) f |= kVmSequential;
    else if (is("rr")) f |= kVmRandom;
    else if (is("dd")) f |= kVmDontDump;
    else if (is("hg")) f |= kVmHugePage;
    else if (is("nh")) f |= kVmNoHugePage;
    else if (is("mg")) f |= kVmMergeable;
    p += 2;
  }
  return f;
}

bool ends_with(const char* s, size_t n, const char* suffix) {
  const size_t k = strlen(suffix);
  return n >= k && !memcmp(s + n - k, suffix, k);
}

// Index of the VMA holding addr, or -1.
long vma_at(uint64_t addr) {
  long lo = 0, hi = long(g_scratch->vma_count) - 1;
  while (lo <= hi) {
    const long mid = (lo + hi) / 2;
    const Vma& v = g_scratch->vmas[mid];
    if (addr < v.start) hi = mid - 1;
    else if (addr >= v.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

// A table region is served lazily after a resume only if every byte of it lies in private
// anonymous mappings registered with our userfaultfd.
bool in_empty(const MappingInput& in, uint64_t s, uint64_t e) {
  for (uint32_t i = 0; i < in.empty_pairs; i++) {
    if (s >= in.empty[2 * i] && e <= in.empty[2 * i + 1]) return true;
  }
  return false;
}

bool holds_pinned(const MappingInput& in, uint64_t s, uint64_t e) {
  for (uint32_t i = 0; i < in.pinned_count; i++) {
    if (in.pinned[i] >= s && in.pinned[i] < e) return true;
  }
  return false;
}

// Memory the program's allocator mapped behind the shim's back, worth serving lazily.
bool extra_lazy(const MappingInput& in, snap::MappingKind kind, uint32_t flags, uint32_t prot, uint64_t s,
                uint64_t e) {
  return in.lazy_min_bytes && kind == snap::MappingKind::kAnonymous && !(flags & snap::kMappingGrowsDown) &&
         prot != PROT_NONE && e - s >= in.lazy_min_bytes && !holds_pinned(in, s, e) && !overlaps_aside(s, e) && !aside_overflowed() &&
         !in_empty(in, s, e);
}

bool registered_throughout(const Region& r) {
  uint64_t at = r.start;
  long i = vma_at(at);
  while (at < r.end) {
    if (i < 0 || i >= long(g_scratch->vma_count)) return false;
    const Vma& v = g_scratch->vmas[i];
    if (v.start > at || v.shared || !(v.vmflags & kVmUffdMissing) || v.ino) return false;
    at = v.end;
    i++;
  }
  return true;
}

bool in_skip(const MappingInput& in, const Vma& v) {
  for (uint32_t i = 0; i < in.skip_pairs; i++) {
    if (v.start >= in.skip[2 * i] && v.end <= in.skip[2 * i + 1]) return true;
  }
  return false;
}

bool add_plan(const PlannedRegion& p) {
  if (g_scratch->plan_count == kMaxPlan) return false;
  g_scratch->plan[g_scratch->plan_count++] = p;
  return true;
}

MappedVma mapped(const Vma& v, const char* name, size_t name_len) {
  return MappedVma{v.start, v.end, v.offset, v.dev, v.ino, name, name_len, !v.shared};
}

}  // namespace

bool prepare_mapping_capture() {
  if (g_scratch) return true;
  void* s = map_scratch(sizeof(Scratch));
  if (!s) return false;
  Scratch* sc = new (s) Scratch();
  sc->vmas = static_cast<Vma*>(map_scratch(uint64_t(kMaxVmas) * sizeof(Vma)));
  sc->lazy = static_cast<Region*>(map_scratch(uint64_t(kMaxLazy) * sizeof(Region)));
  sc->plan = static_cast<PlannedRegion*>(map_scratch(uint64_t(kMaxPlan) * sizeof(PlannedRegion)));
  if (!sc->vmas || !sc->lazy || !sc->plan) return false;
  g_scratch = sc;
  return true;
}

uint32_t planned_region_count() { return g_scratch ? g_scratch->plan_count : 0; }
const PlannedRegion* planned_regions() { return g_scratch ? g_scratch->plan : nullptr; }

// The first guard page (madvise MADV_GUARD_INSTALL, Linux 6.13) in [start, end), or 0. A guard
// page is not in the mapping's flags, and pagemap shows it as swapped out (the writer read it and
// died of SIGSEGV); PAGEMAP_SCAN reports it (PAGE_IS_GUARD, Linux 6.14). Where
// the kernel does not know that category, it has no guard pages to report either (or cannot say:
// then 0 too, as before).
static uint64_t first_guard_page(uint64_t start, uint64_t end) {
  constexpr uint64_t kGuard = 1u << 8;  // PAGE_IS_GUARD
  const long fd = sys::openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  pagemap::Range found[1];
  pagemap::ScanArg arg = {};
  arg.size = sizeof arg;
  arg.start = start;
  arg.end = end;
  arg.vec = reinterpret_cast<uint64_t>(found);
  arg.vec_len = 1;
  arg.category_anyof_mask = kGuard;
  arg.return_mask = kGuard;
  const long n = sys::ioctl(int(fd), pagemap::kScanIoctl, &arg);
  sys::close(int(fd));
  return n > 0 ? found[0].start : 0;
}

bool capture_mappings(const MappingInput& in, TableBuilder* mappings, snap::ProcessRecord* proc, LineWriter* why) {
  Scratch& sc = *g_scratch;
  sc.vma_count = sc.lazy_count = sc.plan_count = 0;
  reset_mapped_files();

  // 1. Every VMA, with the flags that matter.
  bool have_pending = false;
  bool too_many = false;
  Vma pending{};
  bool read = sc.reader.for_each("/proc/self/smaps", [&](const char* line, size_t n) {
    if (n == 0) return;
    const char c = line[0];
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
      const char* path;
      size_t path_len;
      Vma v;
      if (!parse_header(line, n, &v, &path, &path_len)) return;
      v.path = mappings->add_string(path, path_len);
      pending = v;
      have_pending = true;
      return;
    }
    if (have_pending && starts_with(line, n, "VmFlags:")) {
      pending.vmflags = parse_vmflags(line + 8, line + n);
      if (sc.vma_count == kMaxVmas) {
        too_many = true;
      } else {
        sc.vmas[sc.vma_count++] = pending;
      }
      have_pending = false;
    }
  });
  if (!read || too_many || mappings->overflowed()) {
    why->str(!read ? "cannot read /proc/self/smaps" : "too many mappings");
    return false;
  }

  // 2. The table's regions, and which of them stay lazy.
  {
    BlockedSection hold(*in.table_lock);
    const RegionList& live = in.table->live();
    if (live.size() > kMaxLazy) {
      why->str("too many registered regions");
      return false;
    }
    for (size_t i = 0; i < live.size(); i++) sc.lazy[sc.lazy_count++] = live.at(i);
  }
  uint32_t kept = 0;
  for (uint32_t i = 0; i < sc.lazy_count; i++) {
    if (registered_throughout(sc.lazy[i]) && !holds_pinned(in, sc.lazy[i].start, sc.lazy[i].end)) {
      sc.lazy[kept++] = sc.lazy[i];
    }
  }
  sc.lazy_count = kept;

  // 3. The mapping records and the plan, in address order.
  uint32_t next_lazy = 0;
  for (uint32_t i = 0; i < sc.vma_count; i++) {
    const Vma& v = sc.vmas[i];
    if (in_skip(in, v)) continue;
    const char* name = mappings->string_at(v.path);
    const size_t name_len = v.path.length;
    if (v.end > snap::kRestorerZoneStart && v.start < snap::kRestorerZoneStart + snap::kRestorerZoneLength) {
      why->str("the program has memory at ").hex(v.start).str(", inside the range the restorer needs (")
          .hex(snap::kRestorerZoneStart).str("-").hex(snap::kRestorerZoneStart + snap::kRestorerZoneLength).str(")");
      return false;
    }
    snap::MappingKind kind;
    uint32_t flags = 0;
    long object = -1;
    uint64_t file_size = 0, file_mtime = 0;
    if (name[0] == '[') {
      if (!strcmp(name, "[heap]")) {
        kind = snap::MappingKind::kAnonymous;
        flags |= snap::kMappingHeap;
      } else if (!strcmp(name, "[stack]")) {
        kind = snap::MappingKind::kStack;
        flags |= snap::kMappingGrowsDown;
      } else if (!strcmp(name, "[vdso]") || !strcmp(name, "[vvar]") || !strcmp(name, "[vvar_vclock]")) {
        kind = snap::MappingKind::kVdso;
        if (!strcmp(name, "[vdso]")) {
          proc->vdso_start = v.start;
          proc->vdso_length = v.end - v.start;
          proc->vdso_checksum = snap::checksum(reinterpret_cast<const void*>(v.start), v.end - v.start);
        } else if (!strcmp(name, "[vvar]")) {
          proc->vvar_start = v.start;
          proc->vvar_length = v.end - v.start;
        } else {
          proc->vclock_start = v.start;
          proc->vclock_length = v.end - v.start;
        }
      } else if (!strcmp(name, "[vsyscall]")) {
        kind = snap::MappingKind::kVsyscall;
      } else if (starts_with(name, name_len, "[anon:") && !v.shared) {
        kind = snap::MappingKind::kAnonymous;
      } else if (starts_with(name, name_len, "[anon_shmem:") && v.shared) {
        kind = snap::MappingKind::kShared;
        object = shared_memory_object(in.objects, mapped(v, name, name_len), why);
        if (object < 0) return false;
      } else {
        why->str(v.shared ? "shared anonymous memory " : "a special mapping ").str(name).str(" at ").hex(v.start);
        return false;
      }
    } else if (name_len == 0) {
      if (v.shared) {
        why->str("shared anonymous memory at ").hex(v.start);
        return false;
      }
      kind = snap::MappingKind::kAnonymous;
    } else if (name[0] == '/' && ends_with(name, name_len, " (deleted)")) {
      const MappedVma m = mapped(v, name, name_len - 10);
      const bool shmem = starts_with(name, name_len, "/SYSV") || starts_with(name, name_len, "/dev/zero (deleted)");
      if (shmem && !v.shared) {
        // Mapped privately (through /proc/self/map_files or a descriptor of it): its unchanged
        // pages show the shared pages as they change, which a copy of its contents would not.
        why->str("a private mapping of shared memory at ").hex(v.start);
        return false;
      }
      if (shmem) {
        kind = snap::MappingKind::kShared;
        object = shared_memory_object(in.objects, m, why);
      } else {
        // A deleted file or a memfd: mapped from the object made again.
        kind = v.shared ? snap::MappingKind::kFileShared : snap::MappingKind::kFilePrivate;
        object = mapped_file_object(in.objects, m, why);
        if (v.vmflags & kVmMayWrite) flags |= snap::kMappingMayWrite;
      }
      if (object < 0) return false;
    } else if (name[0] == '/') {
      struct stat st;
      long r = sys::call6(SYS_newfstatat, AT_FDCWD, long(name), long(&st), 0);
      if (r < 0 || uint64_t(st.st_ino) != v.ino || uint64_t(st.st_dev) != v.dev) {
        why->str("the mapped file ").str(name).str(r < 0 ? " cannot be found" : " was replaced since it was mapped");
        return false;
      }
      if (!S_ISREG(st.st_mode)) {
        why->str("a mapping of ").str(name).str(", which is not a regular file");
        return false;
      }
      kind = v.shared ? snap::MappingKind::kFileShared : snap::MappingKind::kFilePrivate;
      if (v.vmflags & kVmMayWrite) flags |= snap::kMappingMayWrite;
      file_size = uint64_t(st.st_size);
      file_mtime = uint64_t(st.st_mtim.tv_sec) * 1000000000ull + uint64_t(st.st_mtim.tv_nsec);
    } else {
      why->str("a mapping of ").str(name).str(" at ").hex(v.start);
      return false;
    }
    if (kind != snap::MappingKind::kVdso && (v.vmflags & (kVmIo | kVmPfnMap))) {
      why->str("an I/O mapping at ").hex(v.start);
      return false;
    }
    if (v.vmflags & kVmHugetlb) {
      why->str("hugetlb memory at ").hex(v.start);
      return false;
    }
    if (const uint64_t guard = first_guard_page(v.start, v.end)) {
      // Read by the image writer, such a page kills it (SIGSEGV); a resume would not install it.
      why->str("a guard page (MADV_GUARD_INSTALL) at ").hex(guard);
      return false;
    }
    if (v.vmflags & kVmDontCopy) flags |= snap::kMappingDontFork;
    if (v.vmflags & kVmWipeOnFork) flags |= snap::kMappingWipeOnFork;
    if (v.vmflags & kVmShadowStack) {
      why->str("a shadow stack at ").hex(v.start);
      return false;
    }
    const bool shims_wp = in.uffd_tracks_writes && (v.vmflags & kVmUffdMissing);
    if ((v.vmflags & kVmUffdOther) || ((v.vmflags & kVmUffdWp) && !shims_wp)) {
      why->str("memory registered with a userfaultfd that is not the shim's at ").hex(v.start);
      return false;
    }
    if (v.vmflags & kVmGrowsDown) flags |= snap::kMappingGrowsDown;
    static const struct {
      uint32_t vm, mapping;
    } kAdvice[] = {{kVmNoReserve, snap::kMappingNoReserve}, {kVmSequential, snap::kMappingSequential},
                   {kVmRandom, snap::kMappingRandom},       {kVmDontDump, snap::kMappingDontDump},
                   {kVmHugePage, snap::kMappingHugePage},   {kVmNoHugePage, snap::kMappingNoHugePage},
                   {kVmMergeable, snap::kMappingMergeable}};
    for (const auto& a : kAdvice) {
      if (v.vmflags & a.vm) flags |= a.mapping;
    }

    // Pieces: cut at the lazy regions' edges.
    uint64_t at = v.start;
    while (at < v.end) {
      while (next_lazy < sc.lazy_count && sc.lazy[next_lazy].end <= at) next_lazy++;
      const Region* lazy = next_lazy < sc.lazy_count ? &sc.lazy[next_lazy] : nullptr;
      bool in_lazy = lazy && lazy->start <= at;
      uint64_t piece_end = v.end;
      if (in_lazy && lazy->end < piece_end) piece_end = lazy->end;
      if (!in_lazy && lazy && lazy->start < piece_end) piece_end = lazy->start;
      const bool lazy_extra = !in_lazy && extra_lazy(in, kind, flags, v.prot, at, piece_end);
      snap::MappingRecord* m = mappings->add_record<snap::MappingRecord>();
      if (!m) {
        why->str("too many mappings");
        return false;
      }
      m->start = at;
      m->end = piece_end;
      m->prot = v.prot;
      m->kind = uint32_t(kind);
      m->flags = flags | (in_lazy || lazy_extra ? snap::kMappingLazy : 0);
      m->path = v.path;
      m->object = object >= 0 ? uint32_t(object) + 1 : 0;
      if (kind == snap::MappingKind::kShared) m->offset = v.offset + (at - v.start);
      if (kind == snap::MappingKind::kFilePrivate || kind == snap::MappingKind::kFileShared) {
        m->offset = v.offset + (at - v.start);
        m->dev = v.dev;
        m->ino = v.ino;
        m->size = file_size;
        m->mtime_ns = file_mtime;
      }
      bool ok = true;
      if (in_lazy) {
        if (at == lazy->start) {
          PlannedRegion p{};
          p.start = lazy->start;
          p.end = lazy->end;
          p.prot = uint32_t(lazy->prot);
          p.map_flags = MAP_PRIVATE | MAP_ANONYMOUS;
          p.lazy = 1;
          p.source = lazy->source;
          p.source_page = lazy->source_page;
          ok = add_plan(p);
        }
      } else if ((kind == snap::MappingKind::kAnonymous || kind == snap::MappingKind::kStack ||
                  kind == snap::MappingKind::kFilePrivate || kind == snap::MappingKind::kShared) &&
                 !in_empty(in, at, piece_end)) {
        PlannedRegion p{};
        p.start = at;
        p.end = piece_end;
        p.prot = v.prot;
        p.map_flags = kind == snap::MappingKind::kFilePrivate ? MAP_PRIVATE
                      : kind == snap::MappingKind::kShared   ? MAP_SHARED | MAP_ANONYMOUS
                                                             : MAP_PRIVATE | MAP_ANONYMOUS;
        p.shared = kind == snap::MappingKind::kShared;
        p.file = kind == snap::MappingKind::kFilePrivate;
        p.lazy = lazy_extra ? 2 : 0;
        p.source = Region::kZeroSource;
        ok = add_plan(p);
      }
      if (!ok) {
        why->str("too many regions");
        return false;
      }
      at = piece_end;
    }
  }
  if (mappings->overflowed()) {
    why->str("too many mappings");
    return false;
  }
  return fill_mapped_files(in.objects, why);
}

void set_fork_advice(const TableBuilder& mappings, bool on) {
  for (uint32_t i = 0; i < mappings.count(); i++) {
    const auto* m = static_cast<const snap::MappingRecord*>(mappings.record(i));
    void* at = reinterpret_cast<void*>(m->start);
    if (m->flags & snap::kMappingDontFork) sys::madvise(at, m->end - m->start, on ? MADV_DONTFORK : MADV_DOFORK);
    if (m->flags & snap::kMappingWipeOnFork) sys::madvise(at, m->end - m->start, on ? MADV_WIPEONFORK : MADV_KEEPONFORK);
  }
}

}  // namespace uffdlazy::ckpt
