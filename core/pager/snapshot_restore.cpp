#include "core/pager/snapshot_restore.h"

#include <fcntl.h>

#include "core/base/blocked_section.h"
#include "core/base/decimal.h"
#include "core/base/high_fd.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

bool SnapshotRestore::open(const char* path, bool verify_pages, LineWriter* err) {
  snap::SnapshotReader* reader = reader_.construct();
  // The monitor reads pages with pread from a descriptor of its own; the reader maps the same
  // file (through /proc/self/fd, so a file renamed over `path` meanwhile cannot come between).
  int fd = -1;
  long opened = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  snap::ReadStatus st;
  if (opened >= 0) {
    fd = move_fd_high(int(opened));
    char self[40] = "/proc/self/fd/";
    self[14 + format_u64(self + 14, uint64_t(fd))] = 0;
    st = reader->open(self);
    if (st.error == snap::ReadError::kOpenFailed) st = reader->open(path);  // no /proc
  } else {
    st = reader->open(path);
  }
  if (!st.ok()) {
    if (fd >= 0) sys::close(fd);
    snap::describe(st, *err);
    return false;
  }
  if (reader->packed_length()) {
    // Packed pages (format 2.1) are written only into the regions of a process image that the
    // restorer puts in place itself; a restore serves whole blocks from the file.
    if (fd >= 0) sys::close(fd);
    err->str("this snapshot holds packed pages (a process image's: uffdlazy resume it), which a restore cannot serve");
    return false;
  }
  if (source_.construct()->init(reader, verify_pages, fd) < 0 ||
      matcher_.construct()->init(reader, snap::RegionMatcher::mode_for(*reader)) < 0) {
    err->str("cannot map memory for the restore");
    return false;
  }
  return true;
}

bool SnapshotRestore::open_remote(const char* location, const char* fetcher, char* const* envp, bool verify_pages,
                                  LineWriter* err) {
  remote::RemoteOpen* ro = remote_open_.construct();
  if (!remote::start_fetcher(location, fetcher, envp, ro, err)) return false;
  snap::SnapshotReader* reader = reader_.construct();
  char self[40] = "/proc/self/fd/";
  self[14 + format_u64(self + 14, uint64_t(ro->view_fd))] = 0;
  snap::ReadStatus st = reader->open(self);
  if (!st.ok()) {
    remote::stop_fetcher(ro);
    snap::describe(st, *err);
    return false;
  }
  if (reader->ancestor_count() > 0) {
    remote::stop_fetcher(ro);
    err->str("an incremental image (it takes pages from ancestors): only a full snapshot can be restored from a URL");
    return false;
  }
  if (source_.construct()->init(reader, verify_pages, ro->view_fd) < 0 ||
      matcher_.construct()->init(reader, snap::RegionMatcher::mode_for(*reader)) < 0) {
    remote::stop_fetcher(ro);
    err->str("cannot map memory for the restore");
    return false;
  }
  remote_source_.construct()->init(source_.get(), ro->control, ro->bell_fd, location);
  remote_ = true;
  return true;
}

void SnapshotRestore::abandon() {
  if (remote_ && remote_open_) remote::stop_fetcher(remote_open_.get());
  remote_ = false;
}

bool SnapshotRestore::recorded_from_this_program(LineWriter* err) {
  snap::ModuleIdentity* self = &scratch_;
  int r = snap::read_executable_identity(self);
  if (r < 0) {
    err->str("cannot identify the running executable: ").errno_text(-r);
    return false;
  }
  snap::ReadStatus st = reader_->check_identity(*self);
  if (!st.ok()) {
    snap::describe(st, *err);
    return false;
  }
  return true;
}

const char* SnapshotRestore::recorded_executable() const { return reader_ ? reader_->exe_path() : ""; }

PageSource* SnapshotRestore::source() const {
  if (!ready_) return nullptr;
  if (remote_) return remote_source_.get();
  return source_.get();
}

uint32_t SnapshotRestore::snapshot_module(int32_t module, const CallSiteTable& sites) {
  if (module < 0 || uint32_t(module) >= CallSiteTable::kMaxModules) return snap::kNoModule;
  uint32_t cached = __atomic_load_n(&module_map_[module], __ATOMIC_ACQUIRE);
  if (cached) return cached - 1;
  // Once per module: read its build-id from the file and find it among the snapshot's modules.
  BlockedSection g(module_lock_);
  cached = module_map_[module];
  if (cached) return cached - 1;
  uint32_t found = snap::kNoModule;
  if (snap::read_module_identity(sites.module_path(module), &scratch_) == 0) {
    found = matcher_->find_module(scratch_);
  }
  __atomic_store_n(&module_map_[module], found + 1, __ATOMIC_RELEASE);
  return found;
}

int32_t SnapshotRestore::match(uintptr_t start, uint64_t length, int prot, int flags, SiteId site, uint32_t ordinal,
                               const CallSiteTable& sites) {
  if (!ready_) return -1;
  snap::MappingQuery q;
  q.start = start;
  q.length = length;
  q.prot = prot;
  q.flags = flags;
  if (!site.known() || ordinal == CallSiteTable::kNoOrdinal) return -1;
  q.module = snapshot_module(site.module, sites);
  if (q.module == snap::kNoModule) return -1;
  q.offset = site.offset;
  q.ordinal = ordinal;
  int64_t r = matcher_->match(q);
  return r < 0 || r > INT32_MAX ? -1 : int32_t(r);
}

void SnapshotRestore::write_account(const char* path, int fd) const {
  if (!ready_) return;
  snap::SourceReport rep = source_->report();
  LineWriter w;
  w.str("uffdlazy: restore ").str(path).str(": regions matched=").u64(matcher_->matched_count()).str(" of ")
      .u64(matcher_->region_count()).str(", pages served=").u64(rep.pages_served).str(", never touched=")
      .u64(rep.pages_never_touched).str(", dropped=").u64(rep.pages_dropped);
  if (rep.corrupt_pages) w.str(", corrupt=").u64(rep.corrupt_pages);
  w.emit(fd);
  if (remote_) {
    // What came over the network for this restore, and what the host cache had.
    const remote::ChannelHeader* h = remote_source_->channel().header();
    LineWriter r;
    r.str("uffdlazy: remote ").str(path).str(": blocks fetched=").u64(__atomic_load_n(&h->blocks_fetched, __ATOMIC_RELAXED))
        .str(", from the host cache=").u64(__atomic_load_n(&h->blocks_cached, __ATOMIC_RELAXED))
        .str(", requests=").u64(__atomic_load_n(&h->requests, __ATOMIC_RELAXED))
        .str(", bytes fetched=").u64(__atomic_load_n(&h->bytes_fetched, __ATOMIC_RELAXED));
    r.emit(fd);
  }
}

const void* SnapshotRestore::owed_content(int32_t region, uint64_t page, bool* owed) const {
  *owed = false;
  if (!ready_ || region < 0) return nullptr;
  if (!source_->is_owed(region, page)) return nullptr;
  *owed = true;
  // A remote block is read only once it has landed in the view.
  if (remote_) remote_source_->wait_landed_quietly(region, page);
  snap::PageRef ref = reader_->page(uint64_t(region), page);
  return ref.kind == snap::PageKind::kData || ref.kind == snap::PageKind::kDuplicate ? ref.data : nullptr;
}

}  // namespace uffdlazy
