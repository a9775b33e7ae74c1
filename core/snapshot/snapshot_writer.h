// Writes a snapshot file as a stream, from inside a target (typically a child forked from it):
//
//   SnapshotWriter w;                      // ~13 KiB of state: static storage or a roomy stack
//   w.open("/path/app.snap");              // creates /path/app.snap.tmp.<pid>
//   w.begin(exe_identity, kFlagNoAslr);
//   w.add_region(info, provider);          // once per region, pages pulled from the provider
//   w.commit();                            // index + header, fsync, rename to the final name
//
// Any failure removes the temporary file at once and makes every later call return the same
// status, so the final name either holds a complete snapshot or nothing new.
//
// Memory: a write buffer (WriterOptions::buffer_pages pages), the dedup table (dedup_slots x 16
// bytes, fixed), one scratch page, and mremap-grown buffers for the page index (16 bytes per
// stored page, 24 per run of them), the region table (160 bytes per region) and module names.
// Nothing comes from the heap. Absent pages cost nothing: a region's size in the file, and the
// time to write it, follow its stored pages (when the provider says where they are, next()).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/snapshot/executable_identity.h"
#include "core/snapshot/format.h"
#include "core/snapshot/grow_buffer.h"
#include "core/snapshot/snapshot_status.h"

namespace uffdlazy::snap {

// Hands the writer the content of one region, page by page. Not abstract (a pure virtual would
// need __cxa_pure_virtual from libstdc++): the default body says every page is absent.
class PageProvider {
 public:
  // Returns page_size bytes of page `index` of the region, or nullptr when the page is absent
  // (it never existed in memory). The bytes need to stay valid only until the next call.
  // A provider that cannot produce a page calls fail(errno) and returns nullptr.
  virtual const void* page(uint64_t index) {
    (void)index;
    return nullptr;
  }
  // The first page in [from, end) that may not be absent, or `end`: the writer asks only about
  // those, so a provider that knows where its pages are makes a sparse region cheap to write.
  virtual uint64_t next(uint64_t from, uint64_t end) {
    (void)end;
    return from;
  }
  // Whether page `index` is unchanged since the parent image (SnapshotWriter::set_ancestors), and
  // its entry there. The writer then refers to it rather than asking page(), unless the chain
  // would grow too long (kMaxAncestors): then page() must give its content.
  virtual bool unchanged(uint64_t index, PageEntry* in_parent) {
    (void)index;
    (void)in_parent;
    return false;
  }
  void fail(int err) { failed_errno_ = err ? err : 5 /* EIO */; }
  int failed_errno() const { return failed_errno_; }

 protected:
  ~PageProvider() = default;  // never deleted through the base: no virtual destructor needed

 private:
  int failed_errno_ = 0;
};

// Adapts any callable `const void* (uint64_t index)` to a PageProvider.
template <typename F>
class CallablePages final : public PageProvider {
 public:
  explicit CallablePages(F& f) : f_(f) {}
  const void* page(uint64_t index) override { return f_(index); }

 private:
  F& f_;
};

// An image this one takes unchanged pages from (the parent first, then its own ancestors).
struct AncestorInfo {
  AncestorRecord record;  // path_offset and path_length are the writer's to fill
  const char* path;       // absolute
};

// Where the region's memory was allocated, in terms that survive ASLR.
struct CallSite {
  const ModuleIdentity* module = nullptr;  // nullptr: unknown site
  uint64_t offset = 0;                     // of the call site within the module
  uint64_t ordinal = 0;                    // the Nth mapping made from this site, from 0
  uint64_t alloc_length = 0;               // the length it was created with
};

struct RegionInfo {
  uint64_t start = 0;
  uint64_t length = 0;  // rounded up to whole pages
  uint32_t prot = 0;
  uint32_t map_flags = 0;
  CallSite site;
  // Store mostly zero pages packed (format 2.1, PageKind::kPacked): only their non-zero spans, in
  // the packed section. For regions a reader puts in place itself (a process image's eager
  // regions), never for pages served lazily from the file mapping (which needs whole blocks).
  bool pack = false;
};

struct WriterOptions {
  uint32_t page_size = 0;            // 0: this machine's page size
  uint32_t dedup_slots = 1u << 16;   // a power of two; 0 disables dedup. 16 bytes per slot
  uint32_t buffer_pages = 64;        // data pages gathered per write(2)
  uint64_t max_packed_bytes = 64ull << 20;  // beyond this, pages of packing regions are stored whole
  bool sync = true;                  // fsync the file before the rename, the directory after
  uint64_t created_ns = 0;           // 0: now
  uint32_t file_mode = 0644;         // 0600 for a process image: it holds all of the memory
};

struct WriterStats {
  uint64_t regions = 0;
  uint64_t pages = 0;
  uint64_t data_pages = 0;       // blocks written
  uint64_t zero_pages = 0;
  uint64_t duplicate_pages = 0;  // pages stored as a reference to an earlier block
  uint64_t parent_pages = 0;     // pages left in an ancestor image
  uint64_t packed_pages = 0;     // mostly zero pages stored as their non-zero spans
  uint64_t packed_bytes = 0;     // the packed section's size
  uint64_t absent_pages = 0;
  uint64_t runs = 0;
  uint64_t dedup_dropped = 0;    // unique blocks the full dedup table could not remember
  uint64_t file_size = 0;        // after commit
};

class SnapshotWriter {
 public:
  SnapshotWriter() = default;
  ~SnapshotWriter() { abort(); }
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  WriteStatus open(const char* final_path, const WriterOptions& options = {});
  // The executable the snapshot belongs to, and header flags (kFlagNoAslr, ...).
  WriteStatus begin(const ModuleIdentity& executable, uint64_t flags);
  WriteStatus add_region(const RegionInfo& region, PageProvider& pages);
  template <typename F>
  WriteStatus add_region_with(const RegionInfo& region, F&& page_fn) {
    CallablePages<F> p(page_fn);
    return add_region(region, p);
  }
  // Makes this an incremental image: `count` ancestors, the parent first (depth 1). At most
  // kMaxAncestors are kept; a page whose entry would lie deeper is stored (PageProvider::unchanged).
  // Before the first add_region.
  WriteStatus set_ancestors(const AncestorInfo* ancestors, uint32_t count);
  // An extra section written with the metadata at commit (a process image's, process_format.h).
  // `data` must stay valid until commit. At most kMaxExtraSections.
  WriteStatus add_section(uint32_t type, uint32_t flags, const void* data, size_t length);
  WriteStatus commit();
  // Drops an unfinished snapshot: closes and unlinks the temporary file. Safe to call any time.
  void abort();

  const WriteStatus& status() const { return status_; }
  const WriterStats& stats() const { return stats_; }
  uint32_t page_size() const { return page_size_; }
  const char* temp_path() const { return tmp_path_; }

 private:
  enum class State : uint8_t { kIdle, kOpen, kBegun, kDone, kFailed };

  WriteStatus fail(WriteError e, int err);
  int write_all(const void* buf, size_t n, uint64_t offset);
  int flush_buffer();
  // Returns the file offset of a block with exactly this content written earlier, or 0.
  uint64_t find_duplicate(uint64_t hash, const void* page);
  void remember(uint64_t hash, uint64_t offset);
  int append_block(const void* page, uint64_t* offset);
  // The entry of a page with this content (zero, data or duplicate), its block written if new.
  int store(const void* page, bool pack, PageEntry* entry);
  long find_or_add_module(const ModuleIdentity& m);
  int write_section(SectionType type, uint32_t flags, const void* data, size_t len, uint64_t* pos,
                    SectionEntry* entry);
  void release_memory();

  State state_ = State::kIdle;
  WriteStatus status_;
  WriterOptions options_;
  WriterStats stats_;
  int fd_ = -1;
  uint32_t page_size_ = 0;
  uint64_t flags_ = 0;

  uint64_t data_offset_ = 0;  // first block
  uint64_t data_end_ = 0;     // next block goes here (buffered blocks included)

  uint8_t* buffer_ = nullptr;  // blocks not yet written, starting at file offset buffer_start_
  size_t buffer_bytes_ = 0;
  size_t buffer_used_ = 0;
  uint64_t buffer_start_ = 0;

  struct Slot {
    uint64_t hash;
    uint64_t offset;  // 0: empty (no block lives at 0, the header does)
  };
  Slot* slots_ = nullptr;
  uint64_t slot_mask_ = 0;
  uint64_t slots_used_ = 0;
  uint8_t* scratch_ = nullptr;  // one page, for reading a written block back

  GrowBuffer entries_;    // PageEntry[]
  GrowBuffer runs_;       // RunRecord[]
  GrowBuffer regions_;    // RegionRecord[]
  GrowBuffer modules_;    // ModuleRecord[]
  GrowBuffer strings_;    // module and ancestor paths
  GrowBuffer ancestors_;  // AncestorRecord[]
  GrowBuffer packed_;     // packed pages' blocks (format 2.1)

  static constexpr size_t kMaxExtraSections = 8;
  struct ExtraSection {
    uint32_t type, flags;
    const void* data;
    size_t length;
  };
  ExtraSection extra_[kMaxExtraSections] = {};
  size_t extra_count_ = 0;

  char final_path_[kMaxPathLength + 1] = {};
  char tmp_path_[kMaxPathLength + 32] = {};
  // The header block as it will be written at offset 0: FileHeader then the executable path.
  alignas(8) uint8_t header_block_[sizeof(FileHeader) + kMaxPathLength + 1] = {};
  uint32_t header_size_ = 0;
};

}  // namespace uffdlazy::snap
