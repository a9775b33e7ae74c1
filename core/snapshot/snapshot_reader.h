// Opens a snapshot read-only and checks everything but the page data up front (sizes, magic,
// version, header/section/index checksums, every offset, the page index's shape), so that later
// lookups cannot go out of the file: a page is found by a binary search of its region's runs
// (O(log runs), no allocation). Page data is checked on demand (verify_page) or in one pass
// (verify_all). Opening costs time linear in the file's size, whatever the regions' sizes.
//
// An incremental image (FORMAT.md) leaves unchanged pages in its ancestors: open_ancestors()
// maps them, after checking that each is the file the image was written against; until then
// their pages have no data (PageRef::data is nullptr) and cannot be verified.
//
// The file may be changed by another process at any time, so nothing the checks approve is read
// from the file again: the header fields, the executable path, the string, module and region
// tables and the page index are copied into private anonymous memory first, checked there, and
// served from there. Only page data comes from the file mapping (each page has its checksum, in the
// private copy). A file truncated by someone else raises SIGBUS on access, like any mapped file.
//
// Raw system calls only, no heap: usable by the shim on the monitor thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/snapshot/executable_identity.h"
#include "core/snapshot/format.h"
#include "core/snapshot/snapshot_status.h"

namespace uffdlazy::snap {

struct PageRef {
  PageKind kind = PageKind::kAbsent;
  const uint8_t* data = nullptr;  // page_size bytes in a mapping (data, duplicate, parent once open;
                                  // never packed: SnapshotReader::unpack)
  uint64_t checksum = 0;          // expected XXH3-64 of data
  uint64_t offset = 0;            // of the block in its file
  uint32_t depth = 0;             // that file: 0 this one, d the ancestor at depth d (kParent)
};

struct AncestorView {
  const char* path = nullptr;  // as recorded, NUL-terminated
  const AncestorRecord* record = nullptr;
  const char* opened_path = nullptr;  // where it was found, once open_ancestors() succeeded
};

struct ModuleView {
  const char* path = nullptr;  // NUL-terminated, in the reader's private copy
  uint32_t path_length = 0;
  IdKind id_kind = IdKind::kNone;
  const uint8_t* id = nullptr;
  uint32_t id_length = 0;
};

// The bytes of one section (nullptr and 0 when the file has none).
struct SectionView {
  const uint8_t* data = nullptr;
  uint64_t length = 0;
};

struct VerifyReport {
  uint64_t regions = 0;
  uint64_t pages = 0;           // all pages of all regions, stored or not
  uint64_t pages_checked = 0;   // data and duplicate pages whose content was checked
  uint64_t blocks_checked = 0;  // distinct data blocks (kData entries), each hashed once
  uint64_t parent_pages = 0;    // pages left in ancestors: checked only when they are open
  uint64_t bad_pages = 0;
  uint64_t first_bad_region = 0;  // valid when bad_pages > 0
  uint64_t first_bad_page = 0;
  bool ok() const { return bad_pages == 0; }
};

class SnapshotReader {
 public:
  SnapshotReader() = default;
  ~SnapshotReader() { close(); }
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  // native_page_size: refuse a snapshot whose page size is not this machine's (what restoring
  // needs); inspect and verify pass false.
  ReadStatus open(const char* path, bool native_page_size = true);
  // The same for a file already open; the reader maps it and neither keeps nor closes `fd`.
  ReadStatus open_fd(int fd, bool native_page_size = true);
  void close();
  bool is_open() const { return base_ != nullptr; }

  const FileHeader& header() const { return header_; }  // the fields this build knows
  uint32_t page_size() const { return header_.page_size; }
  uint64_t file_size() const { return map_size_; }
  const uint8_t* base() const { return base_; }  // the file mapping; only page data is read from it
  uint64_t data_offset() const { return data_offset_; }
  uint64_t data_length() const { return data_length_; }
  // Where page `page` of region `region`'s entry lies in the file, or 0 when the page is absent.
  uint64_t entry_position(uint64_t region, uint64_t page) const;

  // The index digest the header records (index_digest.h); has_index_digest() is false for a 1.0
  // file, which has none.
  const uint8_t* recorded_index_digest() const { return header_.index_digest; }
  // The digest of the metadata as it lies in the file now (hashes header, section table and every
  // section but the data). False if the file no longer holds them.
  bool compute_index_digest(uint8_t out[32]) const;

  const char* exe_path() const { return exe_path_; }
  // The release that wrote the file (format 2.0 and later), or "" when the file does not say.
  const char* writer_version() const { return writer_version_; }
  ModuleView executable() const;
  // A ModuleIdentity of the recorded executable, e.g. to compare with same_module().
  void executable_identity(ModuleIdentity* out) const;
  // kForeign unless `running` is the recorded executable: by build-id when both have one of the
  // same kind, by path otherwise.
  ReadStatus check_identity(const ModuleIdentity& running) const;

  uint64_t region_count() const { return region_count_; }
  const RegionRecord& region(uint64_t i) const { return regions_[i]; }
  uint32_t module_count() const { return module_count_; }
  ModuleView module(uint32_t i) const;
  // The module of region i's allocation site; false when the site is unknown.
  bool region_module(uint64_t i, ModuleView* out) const;

  // Page `page` of region `region`; both must be in range (region(r).page_count).
  PageRef page(uint64_t region, uint64_t page) const;
  // Its entry; an absent page's is all zero (kind kAbsent).
  PageEntry entry(uint64_t region, uint64_t page) const {
    const int64_t i = find(region, page);
    return i < 0 ? PageEntry{} : entries_[i];
  }
  // The index of page `page` of region `region` in the entries, or -1 when the page is absent.
  int64_t find(uint64_t region, uint64_t page) const;
  // Region `region`'s runs, in page order (region(r).run_count of them), and entries by index.
  const RunRecord& run(uint64_t region, uint64_t i) const { return runs_[regions_[region].run_first + i]; }
  const PageEntry& entry_at(uint64_t index) const { return entries_[index]; }
  // Where a data, duplicate or parent entry's block is mapped (nullptr: its ancestor is not open).
  const uint8_t* block(const PageEntry& e) const;
  // A packed entry's page (format 2.1), unpacked into page_size bytes at `page`; false for an
  // entry of another kind, or when the block no longer unpacks. Packed pages have no block: page()
  // gives their kind and checksum only. Read from the file like page data: check the result
  // against the entry's checksum (verify_page does) before trusting it.
  bool unpack(const PageEntry& e, uint8_t* page) const;
  uint64_t packed_length() const { return packed_length_; }
  // The first stored page of region `region` at or after `from`, or page_count when none.
  uint64_t next_stored(uint64_t region, uint64_t from) const;
  // True for absent and zero pages, and for data whose XXH3-64 matches the index (a parent page:
  // only once its ancestor is open).
  bool verify_page(uint64_t region, uint64_t page) const;
  VerifyReport verify_all() const;

  // The images this one takes unchanged pages from (none for a full snapshot), the parent first.
  uint32_t ancestor_count() const { return ancestor_count_; }
  AncestorView ancestor(uint32_t i) const;
  // Maps every ancestor, each found at its recorded path or, failing that, under the same name
  // beside `own_path` (this file's path: a chain moved together still opens), and checks that
  // it is the file this one was written against (identity and data area). kAncestorMissing or
  // kAncestorChanged (what: the path) otherwise.
  ReadStatus open_ancestors(const char* own_path);
  bool ancestors_open() const { return ancestor_count_ == 0 || ancestor_base_[0] != nullptr; }

  // Every mapping the reader holds (the file, its private copies, the ancestors), as [start, end)
  // pairs rounded out to pages: at most kMaxMappings of them. Returns how many were written.
  static constexpr uint32_t kMaxMappings = 3 + kMaxAncestors;
  uint32_t mappings(uint64_t* pairs, uint32_t max) const;
  // A process image's section (process_format.h ProcessSection), in private memory, its checksum
  // verified; ProcessImage interprets them.
  SectionView process_section(uint32_t type) const;
  // The object data section (ProcessSection::kObjectData) is not copied nor checked at open (it
  // may be large): this checks its checksum. True when there is none.
  bool object_data_intact() const;

 private:
  struct Section {
    uint64_t offset = 0, length = 0, checksum = 0;
    bool checked = false;  // has a checksum (the data area's blocks have their own)
  };

  ReadStatus validate(bool native_page_size);
  ReadStatus validate_header(bool native_page_size, const uint8_t* copy, uint32_t header_size);
  ReadStatus validate_sections();
  ReadStatus copy_metadata(const uint8_t* header_copy);
  ReadStatus validate_regions();
  ReadStatus validate_index();
  ReadStatus validate_ancestors();
  // A 1.x file: its regions (RegionRecordV1, `count` of them, in private memory) and per-page
  // index (entries_) rewritten as 2.0's at the given offsets of private memory.
  ReadStatus upgrade_v1_index(const uint8_t* old_regions, uint64_t count, uint64_t regions_at, uint64_t runs_at,
                              uint64_t entries_at);
  ReadStatus open_ancestor(uint32_t i, const char* own_path);

  const uint8_t* base_ = nullptr;  // the file, read-only; page data only once validated
  uint64_t map_size_ = 0;
  uint8_t* private_ = nullptr;  // anonymous memory holding everything below that points anywhere
  uint64_t private_size_ = 0;
  FileHeader header_{};
  const char* exe_path_ = nullptr;
  char writer_version_[kWriterVersionLength + 1] = {};
  Section sections_[kLastSectionType + 1] = {};  // by SectionType
  static constexpr int kProcessSections = 6;  // ProcessSection::kProcess .. kObjectData
  static constexpr int kObjectDataSlot = 5;
  Section process_[kProcessSections] = {};   // a process image's sections (ProcessSection - 16)
  SectionView process_views_[kProcessSections] = {};
  uint64_t data_offset_ = 0;
  uint64_t data_length_ = 0;
  uint64_t entries_offset_ = 0;
  bool v1_ = false;                         // a 1.x file (its index upgraded in private memory)
  const uint8_t* v1_regions_ = nullptr;     // its RegionRecordV1s, for entry_position()
  const char* strings_ = nullptr;
  uint64_t strings_length_ = 0;
  const ModuleRecord* modules_ = nullptr;
  uint32_t module_count_ = 0;
  const RegionRecord* regions_ = nullptr;
  uint64_t region_count_ = 0;
  const RunRecord* runs_ = nullptr;
  uint64_t run_count_ = 0;
  const PageEntry* entries_ = nullptr;
  uint64_t entry_count_ = 0;
  const AncestorRecord* ancestors_ = nullptr;
  uint32_t ancestor_count_ = 0;
  const uint8_t* packed_ = nullptr;  // the packed section, in the file mapping (2.1)
  uint64_t packed_length_ = 0;
  // Once open_ancestors() succeeded: each ancestor's file mapping, and where it was found.
  const uint8_t* ancestor_base_[kMaxAncestors] = {};
  uint64_t ancestor_size_[kMaxAncestors] = {};
  char* ancestor_paths_ = nullptr;  // kMaxAncestors x (kMaxPathLength + 1), mapped on demand
};

}  // namespace uffdlazy::snap
