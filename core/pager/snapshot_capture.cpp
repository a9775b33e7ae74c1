#include "core/pager/snapshot_capture.h"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "core/base/immortal.h"
#include "core/base/line_writer.h"
#include "core/base/mono_clock.h"
#include "core/base/present_pages.h"
#include "core/base/raw_syscall.h"
#include "core/snapshot/executable_identity.h"
#include "core/snapshot/snapshot_writer.h"

namespace uffdlazy {

namespace {

// Everything the child needs, in the child's own copy of static storage.
struct ChildState {
  snap::SnapshotWriter writer;
  snap::ModuleIdentity executable;
  snap::ModuleIdentity modules[CallSiteTable::kMaxModules];
  bool module_read[CallSiteTable::kMaxModules];
  bool module_ok[CallSiteTable::kMaxModules];
  PresentPages present;
  alignas(4096) unsigned char zeros[65536];
  alignas(4096) unsigned char page[65536];  // the page being written, read through /proc/self/mem
};
constinit Immortal<ChildState> g_child;

// Pages of one region: from memory when present in the copy, from the restore source when still
// owed there, otherwise absent.
class RegionPages final : public snap::PageProvider {
 public:
  RegionPages(const Region* r, const CaptureInput* i, int mem, uint64_t* written, uint64_t total, const char* p)
      : region(r), in(i), mem_fd(mem), written_pages(written), total_pages(total),
        next_progress_ns(mono_now_ns() + 1000000000ull), path(p) {}
  const Region* region;
  const CaptureInput* in;
  int mem_fd;
  uint64_t* written_pages;
  uint64_t total_pages;
  uint64_t next_progress_ns;
  const char* path;

  bool owes() const { return region->source != Region::kZeroSource && in->restore; }

  const void* page(uint64_t i) override {
    const uint64_t ps = in->page_size;
    ChildState& c = *g_child;
    progress();
    const uint64_t entry = c.present.entry(region->start + i * ps);
    if (entry & (PresentPages::kPresentBit | PresentPages::kSwappedBit)) {
      // Read through /proc/self/mem, not directly: the table may be a moment behind the kernel (a
      // region unmapped whose event is unread) and a page may be PROT_NONE. Such a page is absent.
      long r = sys::pread(mem_fd, c.page, ps, long(region->start + i * ps));
      return r == long(ps) ? c.page : nullptr;
    }
    if (owes()) {
      bool owed = false;
      const void* data = in->restore->owed_content(region->source, region->source_page + i, &owed);
      if (owed) return data ? data : c.zeros;
    }
    return nullptr;
  }

  // Pages in memory and pages the restore still owes; nothing else is looked at.
  uint64_t next(uint64_t from, uint64_t end) override {
    const uint64_t ps = in->page_size;
    uint64_t at = (g_child->present.next(region->start + from * ps, region->start + end * ps, false) - region->start) / ps;
    if (owes()) {
      const uint64_t first = region->source_page;
      const uint64_t owed = in->restore->page_source().first_owed(region->source, first + from, first + at) - first;
      if (owed < at) at = owed;
    }
    // Progress counts the pages skipped too: they are part of what was asked.
    *written_pages += at - from;
    return at;
  }

  void progress() {
    if ((++*written_pages & 1023) || mono_now_ns() < next_progress_ns) return;
    next_progress_ns = mono_now_ns() + 1000000000ull;
    LineWriter w;
    w.str("uffdlazy: snapshot ").str(path).str(": ").u64(*written_pages * in->page_size >> 20).str(" of ")
        .u64(total_pages * in->page_size >> 20).str(" MiB");
    w.emit(in->message_fd);
  }
};

const snap::ModuleIdentity* module_identity(const CaptureInput& in, SiteId site) {
  if (!site.known() || uint32_t(site.module) >= CallSiteTable::kMaxModules) return nullptr;
  ChildState& c = *g_child;
  if (!c.module_read[site.module]) {
    c.module_read[site.module] = true;
    c.module_ok[site.module] = snap::read_module_identity(in.sites->module_path(site.module), &c.modules[site.module]) == 0;
  }
  return c.module_ok[site.module] ? &c.modules[site.module] : nullptr;
}

[[noreturn]] void child_main(const char* path, const CaptureInput& in) {
  ChildState& c = *g_child.construct();
  LineWriter w;
  auto fail = [&](const snap::WriteStatus& st) {
    w.clear();
    w.str("uffdlazy: snapshot ").str(path).str(": ");
    snap::describe(st, w);
    w.emit(in.message_fd);
    c.writer.abort();
    for (;;) sys::exit_group(1);
  };
  if (snap::read_executable_identity(&c.executable) < 0) c.executable.set_path("unknown", 7);
  snap::WriteStatus st = c.writer.open(path);
  if (!st.ok()) fail(st);
  st = c.writer.begin(c.executable, in.no_aslr ? snap::kFlagNoAslr : 0);
  if (!st.ok()) fail(st);

  long pagemap = c.present.open(in.page_size);
  long mem = pagemap < 0 ? pagemap : sys::openat(AT_FDCWD, "/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0 || mem < 0) {
    // Without it every page would look absent: a snapshot of nothing, silently.
    w.clear();
    w.str("uffdlazy: snapshot ").str(path).str(": cannot read /proc/self/")
        .str(pagemap < 0 ? "pagemap" : "mem").str(" (is /proc mounted?): ")
        .errno_text(int(pagemap < 0 ? -pagemap : -mem)).str("; nothing written");
    w.emit(in.message_fd);
    c.writer.abort();
    for (;;) sys::exit_group(1);
  }
  const RegionList& live = in.table->live();
  uint64_t total_pages = 0, written = 0;
  for (size_t i = 0; i < live.size(); i++) {
    if (!live.at(i).unrestorable) total_pages += live.at(i).length() / in.page_size;
  }
  for (size_t i = 0; i < live.size(); i++) {
    const Region& r = live.at(i);
    if (r.unrestorable) continue;
    SiteId site = CallSiteTable::unpack(r.site);
    snap::RegionInfo info;
    info.start = r.start;
    info.length = r.length();
    info.prot = uint32_t(r.prot);
    info.map_flags = uint32_t(r.flags);
    info.site.module = module_identity(in, site);
    info.site.offset = site.offset;
    info.site.ordinal = r.ordinal;
    info.site.alloc_length = r.alloc_length;
    RegionPages pages(&r, &in, int(mem), &written, total_pages, path);
    st = c.writer.add_region(info, pages);
    if (!st.ok()) fail(st);
  }
  st = c.writer.commit();
  if (!st.ok()) fail(st);
  const snap::WriterStats& s = c.writer.stats();
  w.clear();
  w.str("uffdlazy: snapshot ").str(path).str(" written: ").u64(s.regions).str(" regions, ").u64(s.pages)
      .str(" pages (").u64(s.data_pages).str(" data, ").u64(s.zero_pages).str(" zero, ").u64(s.duplicate_pages)
      .str(" duplicate, ").u64(s.absent_pages).str(" absent), ").u64(s.file_size).str(" bytes");
  w.emit(in.message_fd);
  for (;;) sys::exit_group(0);
}

}  // namespace

long start_capture(const char* path, const CaptureInput& in) {
  // The table must not be half-updated in the child's copy: hold its lock across the clone, with
  // every signal blocked so no handler runs while it is held.
  sigset_t all, old;
  sigfillset(&all);
  sys::sigprocmask(SIG_SETMASK, &all, &old);
  in.table_lock->lock();
  // The child reads the table, whose pool forked children otherwise get wiped.
  in.table->copy_into_forks(true);
  // A bare clone: neither the program's fork handlers nor ours run, and the child uses nothing
  // but raw system calls and its own copy of memory. No exit signal: the program gets no SIGCHLD
  // for it (no EINTR in its sleeps), and wait(2) without __WALL never reaps it.
  long pid = sys::call6(SYS_clone, 0, 0, 0, 0, 0);
  if (pid == 0) child_main(path, in);  // signals stay blocked in the child
  in.table->copy_into_forks(false);
  in.table_lock->unlock();
  sys::sigprocmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

int wait_capture(long pid) {
  int status = 0;
  long r;
  do {
    r = sys::call6(SYS_wait4, pid, reinterpret_cast<long>(&status), __WALL, 0);
  } while (r == -EINTR);
  if (r < 0) return int(r);
  return status;
}

}  // namespace uffdlazy
