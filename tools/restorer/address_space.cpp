// The address space: checks that must pass before anything is changed, then the restorer's own
// mappings out of the way, the vDSO moved where the program had it, every mapping made again at
// its address, the eager pages put in place (each checked against its XXH3), protections set, and
// the lazy ranges registered with a new userfaultfd for the shim's monitor to serve.
#include <cerrno>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#define XXH_INLINE_ALL
#define XXH_NO_STDLIB
#include <xxhash.h>

#include "core/base/pagemap_scan.h"
#include "tools/restorer/restorer.h"

namespace restorer {

uint64_t g_eager_pages = 0, g_lazy_pages = 0;
uint64_t g_uffd_features = 0;

namespace {
// UFFD_FEATURE_WP_ASYNC (Linux 6.7; core/uffd/userfaultfd.h, which needs more than this file has).
constexpr uint64_t kFeatureWpAsync = uint64_t(1) << 15;
bool wants_tracking() {
  return g_options.incremental || (g_image.process->flags & snap::kProcessIncremental);
}
}  // namespace

bool tracking_writes() { return wants_tracking() && (g_uffd_features & kFeatureWpAsync); }

namespace {

// The restorer's own vDSO trio, from its /proc/self/maps.
struct Special {
  uint64_t start = 0, length = 0;
};
Special g_own_vvar, g_own_vclock, g_own_vdso;

struct OwnMapping {
  uint64_t start, end;
  bool keep;
};
constexpr size_t kMaxOwn = 256;
OwnMapping g_own[kMaxOwn];
size_t g_own_count = 0;
char g_maps[64 * 1024];

const char* process_string(snap::StringRef s) { return g_image.process_strings + s.offset; }
const char* mapping_path(const snap::MappingRecord& m) { return g_image.mapping_strings + m.path.offset; }

[[noreturn]] void refuse(Line& l) { die(kRefused, l); }


uint64_t hex(const char*& p) {
  uint64_t v = 0;
  for (;; p++) {
    const char c = *p;
    if (c >= '0' && c <= '9') v = v << 4 | uint64_t(c - '0');
    else if (c >= 'a' && c <= 'f') v = v << 4 | uint64_t(c - 'a' + 10);
    else return v;
  }
}

void read_own_maps() {
  long fd = sys::openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  size_t have = 0;
  if (fd >= 0) {
    for (;;) {
      long r = sys::read(int(fd), g_maps + have, sizeof g_maps - 1 - have);
      if (r <= 0) break;
      have += size_t(r);
    }
    sys::close(int(fd));
  }
  g_maps[have] = 0;
  g_own_count = 0;
  for (const char* p = g_maps; *p && g_own_count < kMaxOwn;) {
    const char* line = p;
    while (*p && *p != '\n') p++;
    const char* end = p;
    if (*p) p++;
    const char* q = line;
    const uint64_t start = hex(q);
    q++;
    const uint64_t stop = hex(q);
    const char* name = end;
    while (name > line && name[-1] != ' ') name--;
    auto is = [&](const char* n) { return size_t(end - name) == length(n) && !memcmp(name, n, length(n)); };
    bool keep = start >= kZone && stop <= kZone + snap::kRestorerZoneLength;
    if (is("[vvar]")) g_own_vvar = Special{start, stop - start}, keep = true;
    else if (is("[vvar_vclock]")) g_own_vclock = Special{start, stop - start}, keep = true;
    else if (is("[vdso]")) g_own_vdso = Special{start, stop - start}, keep = true;
    else if (is("[vsyscall]")) keep = true;
    g_own[g_own_count++] = OwnMapping{start, stop, keep};
  }
}

bool same_vdso_layout() {
  const snap::ProcessRecord& p = *g_image.process;
  if (g_own_vvar.length != p.vvar_length || g_own_vclock.length != p.vclock_length ||
      g_own_vdso.length != p.vdso_length) {
    return false;
  }
  // vDSO code finds its data at fixed distances: the trio must keep its layout.
  const uint64_t base = g_own_vvar.length ? g_own_vvar.start : g_own_vdso.start;
  const uint64_t saved = p.vvar_length ? p.vvar_start : p.vdso_start;
  if (g_own_vclock.length && g_own_vclock.start - base != p.vclock_start - saved) return false;
  if (g_own_vdso.start - base != p.vdso_start - saved) return false;
  return true;
}

void move_trio(uint64_t own_base, uint64_t target_base, bool from_temp) {
  const Special* trio[3] = {&g_own_vvar, &g_own_vclock, &g_own_vdso};
  for (const Special* s : trio) {
    if (!s->length) continue;
    const uint64_t off = s->start - own_base;
    const uint64_t from = (from_temp ? kVdsoTemp : own_base) + off;
    const uint64_t to = target_base + off;
    long r = sys::mremap(reinterpret_cast<void*>(from), s->length, s->length, MREMAP_MAYMOVE | MREMAP_FIXED,
                         reinterpret_cast<void*>(to));
    if (r != long(to)) {
      Line l;
      resume_line(l).s("cannot move the vDSO to ").x(to).s(": ").err(r);
      die(kBroken, l);
    }
  }
}

bool file_changed(const char* path, uint64_t dev, uint64_t ino, uint64_t size, uint64_t mtime_ns, bool check_content) {
  struct stat st;
  if (sys::call6(SYS_newfstatat, AT_FDCWD, long(path), long(&st), 0) < 0) return true;
  if (uint64_t(st.st_dev) != dev || uint64_t(st.st_ino) != ino) return true;
  if (!check_content) return false;
  const uint64_t mtime = uint64_t(st.st_mtim.tv_sec) * 1000000000ull + uint64_t(st.st_mtim.tv_nsec);
  return uint64_t(st.st_size) != size || mtime != mtime_ns;
}

// The first page of [start, end) in memory or swapped, or ~0. One PAGEMAP_SCAN, which skips empty
// page tables (a large lazy region costs nothing); mincore, page by page, on kernels before 6.7.
uint64_t first_present(int pagemap, uint64_t start, uint64_t end) {
  if (pagemap >= 0) {
    namespace pm = uffdlazy::pagemap;
    pm::Range found = {};
    pm::ScanArg arg = {};
    arg.size = sizeof arg;
    arg.start = start;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(&found);
    arg.vec_len = 1;
    arg.max_pages = 1;
    arg.category_anyof_mask = pm::kPresent | pm::kSwapped;
    arg.return_mask = pm::kPresent | pm::kSwapped;
    const long n = sys::ioctl(pagemap, pm::kScanIoctl, &arg);
    if (n >= 0) return n > 0 ? found.start : ~uint64_t(0);
  }
  static unsigned char vec[4096];
  const uint64_t ps = g_image.header->page_size;
  for (uint64_t at = start; at < end;) {
    const uint64_t n = (end - at) / ps < sizeof vec ? (end - at) / ps : sizeof vec;
    if (sys::mincore(reinterpret_cast<void*>(at), n * ps, vec) >= 0) {
      for (uint64_t k = 0; k < n; k++) {
        if (vec[k] & 1) return at + k * ps;
      }
    }
    at += n * ps;
  }
  return ~uint64_t(0);
}

}  // namespace

void check_compatible() {
  const snap::ProcessRecord& p = *g_image.process;
  Line l;
  uint32_t ids[3];
  sys::call6(SYS_getresuid, long(&ids[0]), long(&ids[1]), long(&ids[2]));
  if (ids[0] != p.uid || ids[1] != p.euid) {
    resume_line(l).s("the process ran as uid ").u(p.uid).s(", and this is uid ").u(ids[0]);
    refuse(l);
  }
  if (g_image.header->page_size != 4096 || p.page_size != 4096) {
    resume_line(l).s("the image has ").u(g_image.header->page_size).s("-byte pages");
    refuse(l);
  }
  struct utsname u;
  sys::call6(SYS_uname, long(&u));
  if (!same(u.release, process_string(p.kernel_release))) {
    resume_line(l).s("checkpointed under kernel ").s(process_string(p.kernel_release)).s(", and this is ").s(u.release);
    refuse(l);
  }
  uint32_t a, b, c, d;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
  uint64_t xcr0 = 0;
  if (c & (1u << 27)) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = uint64_t(hi) << 32 | lo;
  }
  if (xcr0 != p.xcr0) {
    resume_line(l).s("the CPU's XSAVE features differ (").x(p.xcr0).s(" at the checkpoint, ").x(xcr0).s(" here)");
    refuse(l);
  }
  read_own_maps();
  if (!same_vdso_layout() ||
      XXH3_64bits(reinterpret_cast<const void*>(g_own_vdso.start), g_own_vdso.length) != p.vdso_checksum) {
    resume_line(l).s("this kernel's vDSO differs from the one the process used");
    refuse(l);
  }
  for (uint32_t i = 0; i < g_image.mapping_count; i++) {
    const snap::MappingRecord& m = g_image.mapping(i);
    if (m.end > kZone && m.start < kZone + snap::kRestorerZoneLength) {
      resume_line(l).s("the process has memory at ").x(m.start).s(", inside the restorer's range");
      refuse(l);
    }
  }
}

void check_files() {
  Line l;
  for (uint32_t i = 0; i < g_image.mapping_count; i++) {
    const snap::MappingRecord& m = g_image.mapping(i);
    if (m.kind != uint32_t(snap::MappingKind::kFilePrivate) && m.kind != uint32_t(snap::MappingKind::kFileShared)) {
      continue;
    }
    if (m.object) continue;  // a deleted file or memfd: made again from the image
    if (file_changed(mapping_path(m), m.dev, m.ino, m.size, m.mtime_ns, true)) {
      resume_line(l).s("the mapped file ").s(mapping_path(m)).s(" changed since the checkpoint");
      refuse(l);
    }
  }
  for (uint32_t i = 0; i < g_image.descriptor_count; i++) {
    const snap::DescriptorRecord d = g_image.descriptor(i);
    if (d.kind != uint32_t(snap::DescriptorKind::kFile) || d.same_as != -1) continue;
    const char* path = g_image.descriptor_strings + d.path.offset;
    if (!memcmp(path, "/proc/self/", 11)) continue;  // the resumed process's own, a new inode
    if (file_changed(path, d.dev, d.ino, 0, 0, false)) {
      resume_line(l).s("descriptor ").u(uint64_t(d.fd)).s(": ").s(path).s(" is gone or was replaced since the checkpoint");
      refuse(l);
    }
  }
  bool cwd_deleted = false;
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    cwd_deleted |= g_image.object(i).kind == uint32_t(snap::ObjectKind::kDeletedCwd);
  }
  if (cwd_deleted) return;  // made again with the objects
  const char* cwd = process_string(g_image.process->cwd);
  long r = sys::call6(SYS_chdir, long(cwd));
  if (r < 0) {
    resume_line(l).s("cannot enter the working directory ").s(cwd).s(": ").err(r);
    refuse(l);
  }
}

int open_userfaultfd() {
  const int flags = O_CLOEXEC | O_NONBLOCK;
  long fd = sys::call6(SYS_userfaultfd, flags);
  if (fd < 0) {
    long dev = sys::openat(AT_FDCWD, "/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return int(fd);
    fd = sys::ioctl(int(dev), USERFAULTFD_IOC_NEW, reinterpret_cast<void*>(long(flags)));
    sys::close(int(dev));
    if (fd < 0) return int(fd);
  }
  uffdio_api api = {};
  api.api = UFFD_API;
  const uint64_t wanted = g_image.process->uffd_features &
                          (UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_THREAD_ID);
  // Incremental checkpoints of the resumed process: the kernel notes which pages it writes
  // (asynchronous write-protect). A kernel without it (before 6.7) refuses the feature, and the
  // descriptor, left uninitialised by the refusal, is asked again without it.
  api.features = wanted | (wants_tracking() ? kFeatureWpAsync : 0);
  long r = sys::ioctl(int(fd), UFFDIO_API, &api);
  if (r < 0 && wants_tracking()) {
    api = {};
    api.api = UFFD_API;
    api.features = wanted;
    r = sys::ioctl(int(fd), UFFDIO_API, &api);
  }
  if (r < 0) {
    sys::close(int(fd));
    return int(r);
  }
  g_uffd_features = api.features;
  return int(fd);
}

void leave_own_address_space() {
  // The vDSO trio goes to a spot in the zone first: its final place may be where the restorer's
  // own stack or vDSO is now.
  const uint64_t own_base = g_own_vvar.length ? g_own_vvar.start : g_own_vdso.start;
  move_trio(own_base, kVdsoTemp, false);
  for (size_t i = 0; i < g_own_count; i++) {
    const OwnMapping& m = g_own[i];
    if (m.keep) continue;
    sys::munmap(reinterpret_cast<void*>(m.start), m.end - m.start);
  }
}

void map_everything() {
  const snap::ProcessRecord& p = *g_image.process;
  const uint64_t own_base = g_own_vvar.length ? g_own_vvar.start : g_own_vdso.start;
  move_trio(own_base, p.vvar_length ? p.vvar_start : p.vdso_start, true);
  for (uint32_t i = 0; i < g_image.mapping_count; i++) {
    const snap::MappingRecord& m = g_image.mapping(i);
    void* at = reinterpret_cast<void*>(m.start);
    const uint64_t len = m.end - m.start;
    long r;
    switch (snap::MappingKind(m.kind)) {
      case snap::MappingKind::kVdso:
      case snap::MappingKind::kVsyscall:
        continue;
      case snap::MappingKind::kAnonymous:
      case snap::MappingKind::kStack: {
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
        if (m.flags & snap::kMappingNoReserve) flags |= MAP_NORESERVE;
        if (m.flags & snap::kMappingGrowsDown) flags |= MAP_GROWSDOWN;
        r = sys::mmap(at, len, PROT_READ | PROT_WRITE, flags, -1, 0);
        break;
      }
      case snap::MappingKind::kFilePrivate:
      case snap::MappingKind::kFileShared: {
        const bool shared = m.kind == uint32_t(snap::MappingKind::kFileShared);
        const int oflags = (shared && (m.flags & snap::kMappingMayWrite)) ? O_RDWR : O_RDONLY;
        // A deleted file or memfd: the one made again (its descriptor is read-write).
        long fd = m.object ? g_made[m.object - 1].fd : sys::openat(AT_FDCWD, mapping_path(m), oflags | O_CLOEXEC);
        if (fd < 0) {
          r = fd;
          break;
        }
        // Private file mappings are writable until their stored pages are in place.
        const int prot = shared ? int(m.prot) : int(m.prot | PROT_READ | PROT_WRITE);
        r = sys::mmap(at, len, prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE, int(fd), long(m.offset));
        if (!m.object) sys::close(int(fd));
        break;
      }
      case snap::MappingKind::kShared:
        r = map_shared(m);
        break;
      default:
        r = -EINVAL;
    }
    if (r != long(m.start)) {
      Line l;
      resume_line(l).s("cannot map ").s(m.path.length ? mapping_path(m) : "memory").s(" at ").x(m.start).s(": ").err(r);
      die(kBroken, l);
    }
    // The advice it had (MADV_MERGEABLE may need CONFIG_KSM, MADV_HUGEPAGE THP: best effort).
    static const struct {
      uint32_t flag;
      int advice;
    } kAdvice[] = {{snap::kMappingDontFork, MADV_DONTFORK},   {snap::kMappingWipeOnFork, MADV_WIPEONFORK},
                   {snap::kMappingSequential, MADV_SEQUENTIAL}, {snap::kMappingRandom, MADV_RANDOM},
                   {snap::kMappingDontDump, MADV_DONTDUMP},   {snap::kMappingHugePage, MADV_HUGEPAGE},
                   {snap::kMappingNoHugePage, MADV_NOHUGEPAGE}, {snap::kMappingMergeable, MADV_MERGEABLE}};
    for (const auto& a : kAdvice) {
      if (m.flags & a.flag) sys::madvise(at, len, a.advice);
    }
  }
}

void fill_eager_pages(bool lazy) {
  const uint64_t ps = g_image.header->page_size;
  for (uint64_t r = 0; r < g_image.region_count; r++) {
    const snap::RegionRecord& rec = g_image.regions[r];
    const long mi = g_image.mapping_at(rec.start);
    if (mi < 0) continue;
    const snap::MappingRecord& m = g_image.mapping(uint32_t(mi));
    if (lazy && (m.flags & snap::kMappingLazy)) {
      g_lazy_pages += rec.data_pages + rec.duplicate_pages + rec.parent_pages;
      continue;
    }
    const bool file = m.kind == uint32_t(snap::MappingKind::kFilePrivate);
    // Stored pages only, run by run: a large region with few pages costs its pages.
    for (uint64_t k = 0; k < rec.run_count; k++) {
      const snap::RunRecord& run = g_image.runs[rec.run_first + k];
      const snap::PageEntry* e = g_image.entries + run.entry;
      for (uint64_t i = 0; i < run.pages;) {
        const uint64_t kind = e[i].offset_kind & snap::kKindMask;
        const uint64_t page = run.first_page + i;
        uint8_t* dst = reinterpret_cast<uint8_t*>(rec.start + page * ps);
        if (kind == uint64_t(snap::PageKind::kZero)) {
          if (file) memset(dst, 0, ps);
          i++;
          continue;
        }
        if (kind == uint64_t(snap::PageKind::kPacked)) {
          // Its non-zero spans; every other byte zero (over a file's content too).
          const uint64_t at = snap::packed_offset(e[i]);
          if (at >= g_image.packed_length ||
              !snap::unpack_page(g_image.packed + at, g_image.packed_length - at, ps, dst) ||
              (g_options.verify && XXH3_64bits(dst, ps) != e[i].checksum)) {
            Line l;
            resume_line(l).s("page ").u(page).s(" of region ").u(r).s(" (address ").x(rec.start + page * ps)
                .s(") failed its checksum; the image is damaged");
            die(kBroken, l);
          }
          g_eager_pages++;
          i++;
          continue;
        }
        if (kind == uint64_t(snap::PageKind::kParent)) {
          // Checked by `uffdlazy resume` (ProcessImage): only lazy regions leave pages in an ancestor.
          Line l;
          resume_line(l).s("page ").u(page).s(" of region ").u(r).s(" is in an ancestor image but must be put in place "
                                                                     "before the program runs; the image is damaged");
          die(kBroken, l);
        }
        // A run of pages stored one after the other in the file: one read.
        uint64_t n = 1;
        const uint64_t off = snap::entry_offset(e[i]);
        while (i + n < run.pages && ((e[i + n].offset_kind & snap::kKindMask) == uint64_t(snap::PageKind::kData) ||
                                     (e[i + n].offset_kind & snap::kKindMask) == uint64_t(snap::PageKind::kDuplicate)) &&
               snap::entry_offset(e[i + n]) == off + n * ps && n < 256) {
          n++;
        }
        long got = sys::pread(g_options.image_fd, dst, n * ps, long(off));
        if (got != long(n * ps)) {
          Line l;
          resume_line(l).s("cannot read the image: ").err(got < 0 ? got : -EIO);
          die(kBroken, l);
        }
        for (uint64_t k2 = 0; k2 < n; k2++) {
          if (g_options.verify && XXH3_64bits(dst + k2 * ps, ps) != e[i + k2].checksum) {
            Line l;
            resume_line(l).s("page ").u(page + k2).s(" of region ").u(r).s(" (address ").x(rec.start + (page + k2) * ps)
                .s(") failed its checksum; the image is damaged");
            die(kBroken, l);
          }
        }
        g_eager_pages += n;
        i += n;
      }
    }
  }
}

void protect_everything() {
  for (uint32_t i = 0; i < g_image.mapping_count; i++) {
    const snap::MappingRecord& m = g_image.mapping(i);
    if (m.kind == uint32_t(snap::MappingKind::kAnonymous) || m.kind == uint32_t(snap::MappingKind::kStack) ||
        m.kind == uint32_t(snap::MappingKind::kFilePrivate) || m.kind == uint32_t(snap::MappingKind::kShared)) {
      if (m.prot != uint32_t(PROT_READ | PROT_WRITE)) sys::call6(SYS_mprotect, long(m.start), long(m.end - m.start), long(m.prot));
    }
  }
}

void register_lazy(int uffd, bool lazy) {
  if (uffd < 0) return;
  const uint64_t ps = g_image.header->page_size;
  if (lazy) {
    // A page already present in a lazy range would shadow the image's: refuse to go on. (The
    // descriptor is closed at once: the program's own are in place by now.)
    const int pagemap = int(sys::openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    for (uint64_t r = 0; r < g_image.region_count; r++) {
      const snap::RegionRecord& rec = g_image.regions[r];
      const long mi = g_image.mapping_at(rec.start);
      if (mi < 0 || !(g_image.mapping(uint32_t(mi)).flags & snap::kMappingLazy)) continue;
      const uint64_t present = first_present(pagemap, rec.start, rec.start + rec.page_count * ps);
      if (present != ~uint64_t(0)) {
        Line l;
        resume_line(l).s("internal error: the lazy page at ").x(present).s(" was touched before the monitor could serve it");
        die(kBroken, l);
      }
    }
    if (pagemap >= 0) sys::close(pagemap);
  }
  auto reg = [&](uint64_t start, uint64_t len) {
    uffdio_register rg = {};
    rg.range.start = start;
    rg.range.len = len;
    // Write-protect too when tracking: the monitor installs the image's pages write-protected, and
    // a page the program never writes is then known to be the image's (core/uffd/userfaultfd.h).
    rg.mode = UFFDIO_REGISTER_MODE_MISSING | (tracking_writes() ? UFFDIO_REGISTER_MODE_WP : 0);
    long r = sys::ioctl(uffd, UFFDIO_REGISTER, &rg);
    if (r < 0 && lazy) {
      Line l;
      resume_line(l).s("cannot register ").x(start).s(" with the userfaultfd: ").err(r);
      die(kBroken, l);
    }
  };
  for (uint64_t r = 0; r < g_image.region_count; r++) {
    const snap::RegionRecord& rec = g_image.regions[r];
    const long mi = g_image.mapping_at(rec.start);
    if (mi < 0 || !(g_image.mapping(uint32_t(mi)).flags & snap::kMappingLazy)) continue;
    reg(rec.start, rec.page_count * ps);
  }
  if (g_image.process->doorbell) reg(g_image.process->doorbell, ps);
}

}  // namespace restorer
