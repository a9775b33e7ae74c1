// Restoring from a snapshot: the file, the page source that serves it, and the matching of new
// mappings to its regions. Lives for the rest of the process once opened.
#pragma once

#include <cstdint>

#include "core/base/immortal.h"
#include "core/base/line_writer.h"
#include "core/base/spin_lock.h"
#include "core/monitor/page_source.h"
#include "core/pager/call_site_table.h"
#include "core/remote/fetcher_launch.h"
#include "core/remote/remote_page_source.h"
#include "core/snapshot/executable_identity.h"
#include "core/snapshot/region_matcher.h"
#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy {

class SnapshotRestore {
 public:
  // Opens and validates the file. On failure appends the problem (without the file name) to err
  // and returns false.
  bool open(const char* path, bool verify_pages, LineWriter* err);
  // The same for a remote object (s3://, http(s)://): starts `fetcher` (uffdlazy-fetch), which
  // brings header and metadata into a view memfd that the reader opens; pages come later.
  bool open_remote(const char* location, const char* fetcher, char* const* envp, bool verify_pages, LineWriter* err);
  // This process does not restore the snapshot after all: a remote one's fetcher is stopped.
  void abandon();
  bool remote() const { return remote_; }
  // Whether the snapshot was recorded from the running executable; if not, appends why to err.
  bool recorded_from_this_program(LineWriter* err);
  // The executable the snapshot was recorded from (a path; NUL-terminated).
  const char* recorded_executable() const;
  // Ready to serve: after open() and recorded_from_this_program().
  void activate() { ready_ = true; }
  bool ready() const { return ready_; }
  PageSource* source() const;
  // Valid once open() succeeded.
  const snap::SnapshotReader& reader() const { return *reader_; }
  const snap::SnapshotPageSource& page_source() const { return *source_; }

  // The snapshot region a new mapping restores, or -1. Thread safe (each region matches once).
  int32_t match(uintptr_t start, uint64_t length, int prot, int flags, SiteId site, uint32_t ordinal,
                const CallSiteTable& sites);

  // "uffdlazy: restore FILE: regions matched=M of N, pages served=S, never touched=T, dropped=D"
  void write_account(const char* path, int fd) const;
  // Whether page `page` of snapshot region `region` is still owed, and its content if so (for a
  // capture taken while the restore is still lazy). nullptr: not owed, or a stored zero page.
  const void* owed_content(int32_t region, uint64_t page, bool* owed) const;

 private:
  uint32_t snapshot_module(int32_t module, const CallSiteTable& sites);

  bool ready_ = false;
  bool remote_ = false;
  Immortal<remote::RemoteOpen> remote_open_;
  Immortal<remote::RemotePageSource> remote_source_;
  Immortal<snap::SnapshotReader> reader_;
  Immortal<snap::SnapshotPageSource> source_;
  Immortal<snap::RegionMatcher> matcher_;
  SpinLock module_lock_;
  snap::ModuleIdentity scratch_;  // under module_lock_: too big for a caller's stack
  // CallSiteTable module index -> snapshot module index (+1; 0 = not looked up yet).
  uint32_t module_map_[CallSiteTable::kMaxModules] = {};
};

}  // namespace uffdlazy
