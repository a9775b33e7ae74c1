#include "core/snapshot/snapshot_reader.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"
#include "core/snapshot/checksum.h"
#include "core/snapshot/index_digest.h"
#include "core/snapshot/process_format.h"

namespace uffdlazy::snap {

namespace {

ReadStatus error(ReadError e, uint64_t a = 0, uint64_t b = 0, const char* what = nullptr) {
  return ReadStatus{e, 0, a, b, what};
}
ReadStatus malformed(const char* what) { return error(ReadError::kMalformed, 0, 0, what); }

// Whether [offset, offset + length) lies within size, without overflowing.
bool fits(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

// offset + length for an error message, saturated rather than wrapped.
uint64_t end_of(uint64_t offset, uint64_t length) { return length > ~offset ? ~uint64_t(0) : offset + length; }

// Private anonymous memory for the length of one check; ok() is false only when mapping failed.
// Never a null pointer, even for zero bytes, so it can be handed to memcpy and the checksum.
class Scratch {
 public:
  explicit Scratch(uint64_t len) : len_(len ? len : 1) {
    const long m = mmap_aside(size_t(len_), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sys::failed(m)) {
      failed_ = true;
      return;
    }
    p_ = reinterpret_cast<uint8_t*>(m);
  }
  ~Scratch() {
    if (p_) sys::munmap(p_, len_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  bool ok() const { return !failed_; }
  uint8_t* get() const { return p_; }

 private:
  uint8_t* p_ = nullptr;
  uint64_t len_ = 0;
  bool failed_ = false;
};

const char* section_name(SectionType t) {
  switch (t) {
    case SectionType::kStrings: return "string table";
    case SectionType::kModules: return "module table";
    case SectionType::kRegions: return "region table";
    case SectionType::kPageEntries: return "page entries";
    case SectionType::kData: return "data area";
    case SectionType::kPageRuns: return "page runs";
    case SectionType::kAncestors: return "ancestor table";
    case SectionType::kPacked: return "packed pages";
  }
  return "section";
}

}  // namespace

void SnapshotReader::close() {
  if (base_) sys::munmap(const_cast<uint8_t*>(base_), map_size_);
  if (private_) sys::munmap(private_, private_size_);
  for (uint32_t i = 0; i < kMaxAncestors; i++) {
    if (ancestor_base_[i]) sys::munmap(const_cast<uint8_t*>(ancestor_base_[i]), ancestor_size_[i]);
    ancestor_base_[i] = nullptr;
    ancestor_size_[i] = 0;
  }
  if (ancestor_paths_) sys::munmap(ancestor_paths_, kMaxAncestors * (kMaxPathLength + 1));
  ancestor_paths_ = nullptr;
  base_ = nullptr;
  private_ = nullptr;
  map_size_ = private_size_ = 0;
  header_ = FileHeader{};
  exe_path_ = nullptr;
  memset(writer_version_, 0, sizeof writer_version_);
  for (Section& s : sections_) s = Section{};
  for (Section& s : process_) s = Section{};
  for (SectionView& v : process_views_) v = SectionView{};
  strings_ = nullptr;
  modules_ = nullptr;
  regions_ = nullptr;
  runs_ = nullptr;
  entries_ = nullptr;
  ancestors_ = nullptr;
  strings_length_ = module_count_ = region_count_ = run_count_ = entry_count_ = 0;
  ancestor_count_ = 0;
  data_offset_ = data_length_ = entries_offset_ = 0;
  v1_ = false;
  v1_regions_ = nullptr;
}

ReadStatus SnapshotReader::open(const char* path, bool native_page_size) {
  close();
  long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ReadStatus{ReadError::kOpenFailed, int(-fd)};
  ReadStatus s = open_fd(int(fd), native_page_size);
  sys::close(int(fd));
  return s;
}

ReadStatus SnapshotReader::open_fd(int fd, bool native_page_size) {
  close();
  struct stat st;
  long r = sys::fstat(fd, &st);
  if (r < 0) return ReadStatus{ReadError::kOpenFailed, int(-r)};
  if (!S_ISREG(st.st_mode)) return error(ReadError::kNotRegularFile);
  if (st.st_size == 0) return error(ReadError::kEmpty);
  long m = mmap_aside(size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  if (sys::failed(m)) return ReadStatus{ReadError::kOpenFailed, int(-m)};
  base_ = reinterpret_cast<const uint8_t*>(m);
  map_size_ = uint64_t(st.st_size);
  ReadStatus s = validate(native_page_size);
  if (!s.ok()) close();
  return s;
}

ReadStatus SnapshotReader::validate(bool native_page_size) {
  const uint64_t size = map_size_;
  // A first look, only to learn how many header bytes to copy; the copy is what gets checked.
  uint8_t first[sizeof(FileHeader)] = {};
  memcpy(first, base_, size < sizeof first ? size : sizeof first);
  if (memcmp(first, kMagic, size < sizeof kMagic ? size : sizeof kMagic) != 0) return error(ReadError::kBadMagic);
  if (size < offsetof(FileHeader, header_size)) return error(ReadError::kTruncated, size, kMinFixedSize);
  uint16_t version[2];
  memcpy(version, first + offsetof(FileHeader, version_major), sizeof version);
  // Before the checksum: a newer format may checksum differently, and "unsupported version" is
  // the useful message then.
  if (version[0] != kVersionMajor && version[0] != kOldestReadMajor) {
    return error(ReadError::kUnsupportedVersion, version[0], version[1]);
  }
  v1_ = version[0] == kOldestReadMajor;
  if (size < kMinFixedSize) return error(ReadError::kTruncated, size, kMinFixedSize);

  uint32_t header_size, fixed_size;
  memcpy(&header_size, first + offsetof(FileHeader, header_size), 4);
  memcpy(&fixed_size, first + offsetof(FileHeader, fixed_size), 4);
  if (header_size > size) return error(ReadError::kTruncated, size, header_size);
  if (fixed_size < kMinFixedSize || header_size < fixed_size) {
    // The checksum cannot be trusted to cover these, so a damaged header is the likely story.
    return error(ReadError::kHeaderChecksum);
  }
  Scratch copy(header_size);
  if (!copy.ok()) return ReadStatus{ReadError::kOpenFailed, ENOMEM};
  memcpy(copy.get(), base_, header_size);
  ReadStatus s = validate_header(native_page_size, copy.get(), header_size);
  if (s.ok()) s = validate_sections();
  if (s.ok()) s = copy_metadata(copy.get());
  if (s.ok()) s = validate_ancestors();
  if (s.ok()) s = validate_regions();
  if (s.ok()) s = validate_index();
  return s;
}

ReadStatus SnapshotReader::validate_header(bool native_page_size, const uint8_t* copy, uint32_t header_size) {
  uint64_t stored;
  memcpy(&stored, copy + offsetof(FileHeader, header_checksum), 8);
  if (checksum_with_zeroed_u64(copy, header_size, offsetof(FileHeader, header_checksum)) != stored) {
    return error(ReadError::kHeaderChecksum);
  }
  FileHeader h{};
  memcpy(&h, copy, kMinFixedSize);
  // The sizes the copy was made with came from a first read of the file; if the file changed
  // since, the checksum above covered a header that does not describe itself.
  if (h.header_size != header_size || h.fixed_size < kMinFixedSize || h.fixed_size > header_size) {
    return error(ReadError::kHeaderChecksum);
  }
  // Fields a later minor version appended stay unknown; fields it lacks read as zero.
  memcpy(&header_, copy, h.fixed_size < sizeof header_ ? h.fixed_size : sizeof header_);

  if (header_.file_size > map_size_) return error(ReadError::kTruncated, map_size_, header_.file_size);
  const uint32_t ps = header_.page_size;
  if (ps < kMinPageSize || ps > kMaxPageSize || (ps & (ps - 1))) return malformed("invalid page size");
  if (native_page_size && ps != getauxval(AT_PAGESZ)) {
    return error(ReadError::kPageSizeMismatch, ps, getauxval(AT_PAGESZ));
  }
  if (!fits(header_.exe_path_offset, uint64_t(header_.exe_path_length) + 1, header_size) ||
      header_.exe_path_offset < header_.fixed_size || copy[header_.exe_path_offset + header_.exe_path_length] != 0) {
    return malformed("executable path outside the header");
  }
  if (header_.exe_id_length > kMaxIdLength) return malformed("executable id too long");
  // Informative only, so never a reason to refuse: whatever is there up to the first NUL.
  if (!v1_ && header_.fixed_size >= offsetof(FileHeader, writer_version) + kWriterVersionLength) {
    memcpy(writer_version_, header_.writer_version, kWriterVersionLength);
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::validate_sections() {
  const uint64_t size = header_.file_size;
  const uint64_t entsize = header_.section_entry_size;
  const uint64_t count = header_.section_count;
  if (entsize < sizeof(SectionEntry) || entsize > 4096 || count > 65536) return malformed("bad section table shape");
  if (!fits(header_.section_table_offset, count * entsize, size)) {
    return error(ReadError::kTruncated, map_size_, end_of(header_.section_table_offset, count * entsize));
  }
  Scratch table(count * entsize);
  if (!table.ok()) return ReadStatus{ReadError::kOpenFailed, ENOMEM};
  memcpy(table.get(), base_ + header_.section_table_offset, count * entsize);
  if (checksum(table.get(), count * entsize) != header_.section_table_checksum) {
    return error(ReadError::kIndexChecksum, 0, 0, "section table");
  }
  bool seen[kLastSectionType + 1] = {};
  for (uint64_t i = 0; i < count; i++) {
    SectionEntry e;
    memcpy(&e, table.get() + i * entsize, sizeof e);
    if (!fits(e.offset, e.length, size)) return error(ReadError::kTruncated, map_size_, end_of(e.offset, e.length));
    if (e.type >= uint32_t(ProcessSection::kProcess) && e.type <= uint32_t(ProcessSection::kObjectData)) {
      // A process image's (process_format.h): copied and checked with the metadata below.
      Section& p = process_[e.type - uint32_t(ProcessSection::kProcess)];
      if (p.checked || (e.offset % 8)) return malformed("bad process image section");
      p = Section{e.offset, e.length, e.checksum, true};
      continue;
    }
    const uint32_t last_type = v1_ ? uint32_t(SectionType::kData) : kLastSectionType;  // 1.x had five
    if (e.type < uint32_t(SectionType::kStrings) || e.type > last_type) {
      if (e.flags & kSectionRequired) return error(ReadError::kUnknownRequiredSection, e.type);
      continue;  // a later minor version's optional section
    }
    const SectionType type = SectionType(e.type);
    if (seen[e.type]) return malformed("a section appears twice");
    seen[e.type] = true;
    if (type != SectionType::kStrings && (e.offset % 8)) return malformed("misaligned section");
    switch (type) {
      case SectionType::kStrings: break;
      case SectionType::kModules:
        if (e.length % sizeof(ModuleRecord) || e.length / sizeof(ModuleRecord) >= kNoModule) {
          return malformed("module table size");
        }
        break;
      case SectionType::kRegions:
        if (e.length % (v1_ ? sizeof(RegionRecordV1) : sizeof(RegionRecord))) return malformed("region table size");
        break;
      case SectionType::kPageEntries:
        if (e.length % sizeof(PageEntry)) return malformed("page entries size");
        break;
      case SectionType::kPageRuns:
        if (e.length % sizeof(RunRecord)) return malformed("page runs size");
        break;
      case SectionType::kAncestors:
        if (e.length % sizeof(AncestorRecord) || e.length / sizeof(AncestorRecord) > kMaxAncestors) {
          return malformed("ancestor table size");
        }
        break;
      case SectionType::kData:
        if (e.offset % header_.page_size || e.length % header_.page_size) return malformed("misaligned data area");
        break;
      case SectionType::kPacked: break;  // blocks of any length, one after the other
    }
    // The page index's sections are always checked; the data area's only if it has a checksum.
    const bool checked = type != SectionType::kData || !(e.flags & kSectionNoChecksum);
    sections_[e.type] = Section{e.offset, e.length, e.checksum, checked};
  }
  const uint32_t last_required = uint32_t(v1_ ? SectionType::kData : SectionType::kPageRuns);
  for (uint32_t t = uint32_t(SectionType::kStrings); t <= last_required; t++) {
    if (!seen[t]) return malformed("a required section is missing");
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::copy_metadata(const uint8_t* header_copy) {
  const Section& strings = sections_[uint32_t(SectionType::kStrings)];
  const Section& modules = sections_[uint32_t(SectionType::kModules)];
  const Section& regions = sections_[uint32_t(SectionType::kRegions)];
  const Section& entries = sections_[uint32_t(SectionType::kPageEntries)];
  const Section& runs = sections_[uint32_t(SectionType::kPageRuns)];
  const Section& ancestors = sections_[uint32_t(SectionType::kAncestors)];  // length 0 when none
  const Section& packed = sections_[uint32_t(SectionType::kPacked)];        // length 0 when none
  const Section& data = sections_[uint32_t(SectionType::kData)];
  // Each part lies inside the mapped file, so the sum cannot overflow.
  const uint64_t path_at = 0;
  const uint64_t strings_at = align_up(path_at + header_.exe_path_length + 1, 8);
  const uint64_t modules_at = align_up(strings_at + strings.length, 8);
  const uint64_t regions_at = align_up(modules_at + modules.length, 8);
  const uint64_t runs_at = align_up(regions_at + regions.length, 8);
  const uint64_t entries_at = align_up(runs_at + runs.length, 8);
  const uint64_t ancestors_at = align_up(entries_at + entries.length, 8);
  uint64_t process_at[kProcessSections];
  uint64_t total = align_up(ancestors_at + ancestors.length, 8);
  for (int i = 0; i < kProcessSections; i++) {
    process_at[i] = total;
    if (i != kObjectDataSlot) total = align_up(total + process_[i].length, 8);
  }
  // 1.x: room for its index as 2.0 has it (upgrade_v1_index), at most a run and an entry a page.
  const uint64_t v1_pages = v1_ ? entries.length / sizeof(PageEntry) : 0;
  const uint64_t up_regions_at = total;
  const uint64_t up_runs_at = up_regions_at + (v1_ ? regions.length / sizeof(RegionRecordV1) : 0) * sizeof(RegionRecord);
  const uint64_t up_entries_at = up_runs_at + v1_pages * sizeof(RunRecord);
  total = up_entries_at + v1_pages * sizeof(PageEntry);
  long m = mmap_aside(size_t(total), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(m)) return ReadStatus{ReadError::kOpenFailed, int(-m)};
  private_ = reinterpret_cast<uint8_t*>(m);
  private_size_ = total;
  memcpy(private_ + path_at, header_copy + header_.exe_path_offset, header_.exe_path_length + 1);
  memcpy(private_ + strings_at, base_ + strings.offset, strings.length);
  memcpy(private_ + modules_at, base_ + modules.offset, modules.length);
  memcpy(private_ + regions_at, base_ + regions.offset, regions.length);
  memcpy(private_ + runs_at, base_ + runs.offset, runs.length);
  memcpy(private_ + entries_at, base_ + entries.offset, entries.length);
  memcpy(private_ + ancestors_at, base_ + ancestors.offset, ancestors.length);
  for (int i = 0; i < kProcessSections; i++) {
    if (!process_[i].checked) continue;
    if (i == kObjectDataSlot) {
      // Bulk bytes (a deleted file's contents, a pipe's buffer): read where they lie in the file;
      // object_data_intact() checks them.
      process_views_[i] = SectionView{base_ + process_[i].offset, process_[i].length};
      continue;
    }
    memcpy(private_ + process_at[i], base_ + process_[i].offset, process_[i].length);
    if (checksum(private_ + process_at[i], process_[i].length) != process_[i].checksum) {
      return error(ReadError::kIndexChecksum, 0, 0, "process image section");
    }
    process_views_[i] = SectionView{private_ + process_at[i], process_[i].length};
  }

  struct {
    SectionType type;
    const Section& section;
    const void* bytes;
  } const checked[] = {{SectionType::kStrings, strings, private_ + strings_at},
                       {SectionType::kModules, modules, private_ + modules_at},
                       {SectionType::kRegions, regions, private_ + regions_at},
                       {SectionType::kPageRuns, runs, private_ + runs_at},
                       {SectionType::kPageEntries, entries, private_ + entries_at},
                       {SectionType::kAncestors, ancestors, private_ + ancestors_at},
                       {SectionType::kData, data, base_ + data.offset}};  // data is never trusted unchecked
  for (const auto& c : checked) {
    if (c.section.checked && checksum(c.bytes, c.section.length) != c.section.checksum) {
      return error(ReadError::kIndexChecksum, 0, 0, section_name(c.type));
    }
  }

  exe_path_ = reinterpret_cast<const char*>(private_ + path_at);
  strings_ = reinterpret_cast<const char*>(private_ + strings_at);
  strings_length_ = strings.length;
  modules_ = reinterpret_cast<const ModuleRecord*>(private_ + modules_at);
  module_count_ = uint32_t(modules.length / sizeof(ModuleRecord));
  regions_ = reinterpret_cast<const RegionRecord*>(private_ + regions_at);
  region_count_ = regions.length / sizeof(RegionRecord);
  runs_ = reinterpret_cast<const RunRecord*>(private_ + runs_at);
  run_count_ = runs.length / sizeof(RunRecord);
  entries_ = reinterpret_cast<const PageEntry*>(private_ + entries_at);
  entry_count_ = entries.length / sizeof(PageEntry);
  entries_offset_ = entries.offset;
  ancestors_ = reinterpret_cast<const AncestorRecord*>(private_ + ancestors_at);
  ancestor_count_ = uint32_t(ancestors.length / sizeof(AncestorRecord));
  // Packed pages are read like page data, from the file mapping: each unpacked page is checked
  // against its checksum (in the private index) before it is used. validate_index checks the
  // section's checksum and its blocks' shape on a private copy it drops after, so a resumed
  // process does not keep them (only the restorer needs them).
  packed_ = base_ + packed.offset;
  packed_length_ = packed.length;
  data_offset_ = data.offset;
  data_length_ = data.length;
  if (v1_) {
    ReadStatus up = upgrade_v1_index(private_ + regions_at, regions.length / sizeof(RegionRecordV1), up_regions_at,
                                     up_runs_at, up_entries_at);
    if (!up.ok()) return up;
  }
  for (uint32_t i = 0; i < module_count_; i++) {
    const ModuleRecord& mod = modules_[i];
    if (!fits(mod.path_offset, uint64_t(mod.path_length) + 1, strings_length_) ||
        strings_[mod.path_offset + mod.path_length] != 0 || mod.id_length > kMaxIdLength) {
      return malformed("module record out of range");
    }
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::upgrade_v1_index(const uint8_t* old_regions, uint64_t count, uint64_t regions_at,
                                            uint64_t runs_at, uint64_t entries_at) {
  // The 1.x region records and per-page index, copied and their section checksums checked, become
  // 2.0's regions, runs and entries: the checks that follow (and every lookup) are then 2.0's.
  const PageEntry* index = entries_;
  const uint64_t index_count = entry_count_;
  RegionRecord* regions = reinterpret_cast<RegionRecord*>(private_ + regions_at);
  RunRecord* runs = reinterpret_cast<RunRecord*>(private_ + runs_at);
  PageEntry* entries = reinterpret_cast<PageEntry*>(private_ + entries_at);
  uint64_t run_count = 0, stored = 0;
  for (uint64_t r = 0; r < count; r++) {
    RegionRecordV1 old;
    memcpy(&old, old_regions + r * sizeof old, sizeof old);
    if (old.index_first > index_count || old.page_count > index_count - old.index_first) {
      return malformed("region index out of range");
    }
    const PageEntry* e = index + old.index_first;
    if (checksum(e, old.page_count * sizeof(PageEntry)) != old.index_checksum) {
      return error(ReadError::kIndexChecksum, 0, 0, "page index");
    }
    RegionRecord& n = regions[r];
    n = RegionRecord{};
    n.start = old.start;
    n.length = old.length;
    n.prot = old.prot;
    n.map_flags = old.map_flags;
    n.page_count = old.page_count;
    n.site_module = old.site_module;
    n.site_offset = old.site_offset;
    n.ordinal = old.ordinal;
    n.alloc_length = old.alloc_length;
    n.data_pages = old.data_pages;
    n.zero_pages = old.zero_pages;
    n.duplicate_pages = old.duplicate_pages;
    n.absent_pages = old.absent_pages;  // checked against the runs by validate_regions
    n.run_first = run_count;
    n.entry_first = stored;
    for (uint64_t p = 0; p < old.page_count; p++) {
      const uint64_t kind = e[p].offset_kind & kKindMask;
      if (kind == uint64_t(PageKind::kAbsent)) {
        if (e[p].offset_kind || e[p].checksum) return malformed("page without data has an offset");
        continue;
      }
      if (kind > uint64_t(PageKind::kDuplicate)) return malformed("unknown page kind");  // 1.x had no parent pages
      RunRecord* last = run_count > n.run_first ? &runs[run_count - 1] : nullptr;
      if (last && last->first_page + last->pages == p && last->pages < UINT32_MAX) {
        last->pages++;
      } else {
        runs[run_count++] = RunRecord{p, stored, 1, 0};
      }
      entries[stored++] = e[p];
    }
    n.run_count = run_count - n.run_first;
    n.entry_count = stored - n.entry_first;
  }
  v1_regions_ = old_regions;
  regions_ = regions;
  region_count_ = count;
  runs_ = runs;
  run_count_ = run_count;
  entries_ = entries;
  entry_count_ = stored;
  return ReadStatus{};
}

ReadStatus SnapshotReader::validate_ancestors() {
  const uint64_t ps = header_.page_size;
  for (uint32_t i = 0; i < ancestor_count_; i++) {
    const AncestorRecord& a = ancestors_[i];
    if (!fits(a.path_offset, uint64_t(a.path_length) + 1, strings_length_) ||
        strings_[a.path_offset + a.path_length] != 0 || a.path_length == 0) {
      return malformed("ancestor path out of range");
    }
    if (a.data_offset % ps || a.data_length % ps || !fits(a.data_offset, a.data_length, a.file_size)) {
      return malformed("ancestor data area out of its file");
    }
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::validate_regions() {
  // Region i's runs and entries follow region i-1's and together the regions own both tables, so
  // the checks below (and every later walk of all pages) touch each run and entry once; nothing
  // here costs time for a page that is not stored.
  const uint64_t ps = header_.page_size;
  uint64_t next_run = 0, next_entry = 0;
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    if (rec.site_module != kNoModule && rec.site_module >= module_count_) return malformed("region module out of range");
    if (rec.page_count != rec.length / ps + (rec.length % ps != 0)) {
      return malformed("region page count disagrees with its length");
    }
    if (rec.run_first != next_run || rec.entry_first != next_entry) {
      return malformed("a region's runs or entries do not follow the previous region's");
    }
    if (rec.run_count > run_count_ - next_run || rec.entry_count > entry_count_ - next_entry) {
      return malformed("region index out of range");
    }
    uint64_t page_end = 0, entry = rec.entry_first;
    for (uint64_t k = 0; k < rec.run_count; k++) {
      const RunRecord& run = runs_[rec.run_first + k];
      if (run.pages == 0 || run.first_page < page_end || run.pages > rec.page_count ||
          run.first_page > rec.page_count - run.pages) {
        return malformed("a run overlaps another or lies outside its region");
      }
      if (run.entry != entry) return malformed("a run's entries do not follow the previous run's");
      page_end = run.first_page + run.pages;
      entry += run.pages;
    }
    if (entry != rec.entry_first + rec.entry_count) return malformed("a region's runs disagree with its entry count");
    if (rec.absent_pages != rec.page_count - rec.entry_count) return malformed("region page counts disagree with its index");
    next_run += rec.run_count;
    next_entry += rec.entry_count;
  }
  if (next_run != run_count_ || next_entry != entry_count_) return malformed("the page index has entries no region owns");
  return ReadStatus{};
}

ReadStatus SnapshotReader::validate_index() {
  const uint64_t ps = header_.page_size;
  const uint64_t blocks = data_length_ / ps;
  // One bit per data block: set by the block's data entry, which must be its only one and come
  // before every duplicate that points at the block.
  Scratch introduced_mem((blocks + 63) / 64 * sizeof(uint64_t));
  if (!introduced_mem.ok()) return ReadStatus{ReadError::kOpenFailed, ENOMEM};
  uint64_t* introduced = reinterpret_cast<uint64_t*>(introduced_mem.get());
  uint64_t data_entries = 0;
  uint64_t packed_at = 0;  // where the next packed block must start: blocks fill the section in entry order
  Scratch unpacked(ps);
  Scratch packed_copy(packed_length_);
  if (!unpacked.ok() || !packed_copy.ok()) return ReadStatus{ReadError::kOpenFailed, ENOMEM};
  const uint8_t* packed = packed_copy.get();
  memcpy(packed_copy.get(), packed_, packed_length_);
  const Section& packed_section = sections_[uint32_t(SectionType::kPacked)];
  if (packed_section.checked && checksum(packed, packed_length_) != packed_section.checksum) {
    return error(ReadError::kIndexChecksum, 0, 0, section_name(SectionType::kPacked));
  }
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    uint64_t counts[6] = {};
    const PageEntry* e = entries_ + rec.entry_first;
    for (uint64_t i = 0; i < rec.entry_count; i++) {
      const uint64_t kind = e[i].offset_kind & kKindMask;
      const uint64_t off = entry_offset(e[i]);
      const uint32_t depth = entry_depth(e[i]);
      if (kind == uint64_t(PageKind::kAbsent) || kind > uint64_t(PageKind::kPacked) ||
          (kind == uint64_t(PageKind::kPacked) && v1_) || (depth && kind != uint64_t(PageKind::kParent))) {
        return malformed("unknown page kind");
      }
      if (kind == uint64_t(PageKind::kPacked)) {
        if (packed_offset(e[i]) != packed_at) return malformed("a packed page is not where the previous one ended");
        const uint64_t used = unpack_page(packed + packed_at, packed_length_ - packed_at, ps, unpacked.get());
        if (!used) return malformed("a packed page is malformed");
        packed_at += used;
      } else if (kind == uint64_t(PageKind::kParent)) {
        if (depth == 0 || depth > ancestor_count_) return malformed("a parent page names no ancestor");
        const AncestorRecord& a = ancestors_[depth - 1];
        if (off < a.data_offset || !fits(off - a.data_offset, ps, a.data_length)) {
          return malformed("a parent page lies outside its ancestor's data area");
        }
      } else if (kind >= uint64_t(PageKind::kData)) {
        if (off % ps || off < data_offset_ || !fits(off - data_offset_, ps, data_length_)) {
          return malformed("page data outside the data area");
        }
        const uint64_t block = (off - data_offset_) / ps;
        const uint64_t bit = uint64_t(1) << (block % 64);
        const bool seen = introduced[block / 64] & bit;
        if (kind == uint64_t(PageKind::kData)) {
          if (seen) return malformed("a data block is referenced by two data entries");
          introduced[block / 64] |= bit;
          data_entries++;
        } else if (!seen) {
          return malformed("a duplicate page points at a block no earlier data entry holds");
        }
      } else if (off != 0) {
        return malformed("page without data has an offset");
      }
      counts[kind]++;
    }
    if (counts[1] != rec.zero_pages || counts[2] != rec.data_pages || counts[3] != rec.duplicate_pages ||
        counts[4] != rec.parent_pages || counts[5] != rec.packed_pages) {
      return malformed("region page counts disagree with its index");
    }
  }
  if (data_entries != blocks) return malformed("the data area has a block no data entry refers to");
  if (packed_at != packed_length_) return malformed("the packed section has bytes no packed page holds");
  return ReadStatus{};
}

bool SnapshotReader::object_data_intact() const {
  const Section& s = process_[kObjectDataSlot];
  return !s.checked || checksum(base_ + s.offset, s.length) == s.checksum;
}

bool SnapshotReader::compute_index_digest(uint8_t out[32]) const {
  return base_ && snap::compute_index_digest(base_, header_.file_size, out);
}

SectionView SnapshotReader::process_section(uint32_t type) const {
  const uint32_t first = uint32_t(ProcessSection::kProcess), last = uint32_t(ProcessSection::kObjectData);
  if (type < first || type > last) return SectionView{};
  return process_views_[type - first];
}

ModuleView SnapshotReader::executable() const {
  return ModuleView{exe_path(), header_.exe_path_length, IdKind(header_.exe_id_kind), header_.exe_id,
                    header_.exe_id_length};
}

void SnapshotReader::executable_identity(ModuleIdentity* out) const {
  out->set_path(exe_path(), header_.exe_path_length);
  out->id_kind = IdKind(header_.exe_id_kind);
  out->id_length = header_.exe_id_length;
  memcpy(out->id, header_.exe_id, header_.exe_id_length);
}

ReadStatus SnapshotReader::check_identity(const ModuleIdentity& running) const {
  if (!base_) return error(ReadError::kNotOpen);
  const IdKind kind = IdKind(header_.exe_id_kind);
  bool same;
  if (kind != IdKind::kNone && header_.exe_id_length && running.has_id() && running.id_kind == kind) {
    same = running.id_length == header_.exe_id_length && !memcmp(running.id, header_.exe_id, running.id_length);
  } else {
    same = running.path_length == header_.exe_path_length && !memcmp(running.path, exe_path(), running.path_length);
  }
  return same ? ReadStatus{} : error(ReadError::kForeign, 0, 0, exe_path());
}

ModuleView SnapshotReader::module(uint32_t i) const {
  const ModuleRecord& m = modules_[i];
  return ModuleView{strings_ + m.path_offset, m.path_length, IdKind(m.id_kind), m.id, m.id_length};
}

bool SnapshotReader::region_module(uint64_t i, ModuleView* out) const {
  const uint32_t m = regions_[i].site_module;
  if (m == kNoModule) return false;
  *out = module(m);
  return true;
}

int64_t SnapshotReader::find(uint64_t region, uint64_t page) const {
  const RegionRecord& rec = regions_[region];
  const RunRecord* runs = runs_ + rec.run_first;
  // The last run starting at or before `page`.
  uint64_t lo = 0, hi = rec.run_count;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (runs[mid].first_page <= page) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return -1;
  const RunRecord& run = runs[lo - 1];
  return page - run.first_page < run.pages ? int64_t(run.entry + (page - run.first_page)) : -1;
}

uint64_t SnapshotReader::next_stored(uint64_t region, uint64_t from) const {
  const RegionRecord& rec = regions_[region];
  const RunRecord* runs = runs_ + rec.run_first;
  uint64_t lo = 0, hi = rec.run_count;  // the first run ending after `from`
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (runs[mid].first_page + runs[mid].pages <= from) lo = mid + 1;
    else hi = mid;
  }
  if (lo == rec.run_count) return rec.page_count;
  return runs[lo].first_page > from ? runs[lo].first_page : from;
}

uint64_t SnapshotReader::entry_position(uint64_t region, uint64_t page) const {
  const int64_t i = find(region, page);
  if (i < 0) return 0;
  if (v1_) {  // 1.x: the region's entry for every page
    RegionRecordV1 old;
    memcpy(&old, v1_regions_ + region * sizeof old, sizeof old);
    return entries_offset_ + (old.index_first + page) * sizeof(PageEntry);
  }
  return entries_offset_ + uint64_t(i) * sizeof(PageEntry);
}

const uint8_t* SnapshotReader::block(const PageEntry& e) const {
  const uint32_t depth = entry_depth(e);
  if (depth == 0) return base_ + entry_offset(e);
  const uint8_t* b = ancestor_base_[depth - 1];
  return b ? b + entry_offset(e) : nullptr;
}

PageRef SnapshotReader::page(uint64_t region, uint64_t page) const {
  const int64_t i = find(region, page);
  if (i < 0) return PageRef{};
  const PageEntry& e = entries_[i];
  const PageKind kind = entry_kind(e);
  if (kind == PageKind::kZero) return PageRef{kind, nullptr, 0, 0, 0};
  if (kind == PageKind::kPacked) return PageRef{kind, nullptr, e.checksum, packed_offset(e), 0};
  return PageRef{kind, block(e), e.checksum, entry_offset(e), entry_depth(e)};
}

bool SnapshotReader::unpack(const PageEntry& e, uint8_t* page) const {
  if (entry_kind(e) != PageKind::kPacked) return false;
  const uint64_t at = packed_offset(e);
  // Read from the file mapping, bounds checked: a file changed since it was opened can make this
  // fail, or unpack other bytes, which the page's checksum then tells.
  return at < packed_length_ && unpack_page(packed_ + at, packed_length_ - at, header_.page_size, page) != 0;
}

bool SnapshotReader::verify_page(uint64_t region, uint64_t page_no) const {
  const PageRef p = page(region, page_no);
  if (p.kind == PageKind::kAbsent || p.kind == PageKind::kZero) return true;
  if (p.kind == PageKind::kPacked) {
    Scratch page_copy(header_.page_size);
    const int64_t i = find(region, page_no);
    return page_copy.ok() && unpack(entries_[i], page_copy.get()) &&
           checksum(page_copy.get(), header_.page_size) == p.checksum;
  }
  return p.data && checksum(p.data, header_.page_size) == p.checksum;
}

VerifyReport SnapshotReader::verify_all() const {
  VerifyReport rep;
  rep.regions = region_count_;
  const uint64_t ps = header_.page_size;
  // Each block is hashed once, at its data entry (which comes before its duplicates), and its
  // duplicates compared with that hash: the work is the file's size, however many duplicates
  // point at one block. Without memory for the hashes, duplicates are hashed one by one.
  Scratch hashes_mem(data_length_ / ps * sizeof(uint64_t));
  uint64_t* hashes = hashes_mem.ok() ? reinterpret_cast<uint64_t*>(hashes_mem.get()) : nullptr;
  Scratch unpacked(ps);
  const bool ancestors = ancestors_open();
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    rep.pages += rec.page_count;
    for (uint64_t k = 0; k < rec.run_count; k++) {
      const RunRecord& run = runs_[rec.run_first + k];
      for (uint64_t i = 0; i < run.pages; i++) {
        const PageEntry& e = entries_[run.entry + i];
        const PageKind kind = entry_kind(e);
        if (kind == PageKind::kZero) continue;
        if (kind == PageKind::kParent) {
          rep.parent_pages++;
          if (!ancestors) continue;
        }
        rep.pages_checked++;
        const uint64_t off = entry_offset(e);
        const uint64_t block_no = (off - data_offset_) / ps;
        uint64_t actual;
        if (kind == PageKind::kPacked) {
          actual = unpacked.ok() && unpack(e, unpacked.get()) ? checksum(unpacked.get(), ps) : ~e.checksum;
        } else if (kind == PageKind::kParent) {
          actual = checksum(block(e), ps);
        } else if (kind == PageKind::kData || !hashes) {
          actual = checksum(base_ + off, ps);
          if (kind == PageKind::kData) {
            rep.blocks_checked++;
            if (hashes) hashes[block_no] = actual;
          }
        } else {
          actual = hashes[block_no];
        }
        if (actual != e.checksum && rep.bad_pages++ == 0) {
          rep.first_bad_region = r;
          rep.first_bad_page = run.first_page + i;
        }
      }
    }
  }
  return rep;
}

uint32_t SnapshotReader::mappings(uint64_t* pairs, uint32_t max) const {
  const uint64_t ps = getauxval(AT_PAGESZ);
  uint32_t n = 0;
  auto add = [&](const void* at, uint64_t size) {
    if (!at || n >= max) return;
    const uint64_t start = reinterpret_cast<uint64_t>(at);
    pairs[2 * n] = start;
    pairs[2 * n + 1] = start + (size + ps - 1) / ps * ps;
    n++;
  };
  add(base_, map_size_);
  add(private_, private_size_);
  add(ancestor_paths_, ancestor_paths_ ? kMaxAncestors * (kMaxPathLength + 1) : 0);
  for (uint32_t i = 0; i < kMaxAncestors; i++) add(ancestor_base_[i], ancestor_size_[i]);
  return n;
}

AncestorView SnapshotReader::ancestor(uint32_t i) const {
  AncestorView v;
  if (i >= ancestor_count_) return v;
  v.record = &ancestors_[i];
  v.path = strings_ + ancestors_[i].path_offset;
  if (ancestor_base_[i] && ancestor_paths_) v.opened_path = ancestor_paths_ + size_t(i) * (kMaxPathLength + 1);
  return v;
}

ReadStatus SnapshotReader::open_ancestors(const char* own_path) {
  if (!base_) return error(ReadError::kNotOpen);
  if (ancestors_open()) return ReadStatus{};
  if (!ancestor_paths_) {
    long m = mmap_aside(kMaxAncestors * (kMaxPathLength + 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sys::failed(m)) return ReadStatus{ReadError::kOpenFailed, int(-m)};
    ancestor_paths_ = reinterpret_cast<char*>(m);
  }
  // The deepest first: ancestors_open() looks at the parent's, which is set last.
  for (uint32_t i = ancestor_count_; i-- > 0;) {
    ReadStatus s = open_ancestor(i, own_path);
    if (!s.ok()) {
      for (uint32_t k = 0; k < kMaxAncestors; k++) {
        if (ancestor_base_[k]) sys::munmap(const_cast<uint8_t*>(ancestor_base_[k]), ancestor_size_[k]);
        ancestor_base_[k] = nullptr;
        ancestor_size_[k] = 0;
      }
      return s;
    }
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::open_ancestor(uint32_t i, const char* own_path) {
  const AncestorRecord& a = ancestors_[i];
  const char* recorded = strings_ + a.path_offset;
  char* found = ancestor_paths_ + size_t(i) * (kMaxPathLength + 1);
  const ReadStatus missing = error(ReadError::kAncestorMissing, i + 1, 0, recorded);
  long fd = sys::openat(AT_FDCWD, recorded, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    memcpy(found, recorded, a.path_length + 1);
  } else if (fd == -ENOENT && own_path) {
    // The same name beside this file: a chain copied or moved together.
    const char* base = recorded + a.path_length;
    while (base > recorded && base[-1] != '/') base--;
    const size_t own = strlen(own_path);
    size_t dir = own;
    while (dir > 0 && own_path[dir - 1] != '/') dir--;
    const size_t name = size_t(recorded + a.path_length - base);
    if (dir + name > kMaxPathLength) return ReadStatus{ReadError::kAncestorMissing, ENOENT, i + 1, 0, recorded};
    memcpy(found, own_path, dir);
    memcpy(found + dir, base, name + 1);
    fd = sys::openat(AT_FDCWD, found, O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    ReadStatus s = missing;
    s.err = int(-fd);
    return s;
  }
  struct stat st;
  long r = sys::fstat(int(fd), &st);
  const ReadStatus changed = error(ReadError::kAncestorChanged, i + 1, 0, recorded);
  if (r < 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) != a.file_size || a.file_size < sizeof(FileHeader)) {
    sys::close(int(fd));
    return changed;
  }
  long m = mmap_aside(size_t(a.file_size), PROT_READ, MAP_PRIVATE, int(fd), 0);
  sys::close(int(fd));
  if (sys::failed(m)) return ReadStatus{ReadError::kOpenFailed, int(-m)};
  const uint8_t* b = reinterpret_cast<const uint8_t*>(m);
  ancestor_base_[i] = b;
  ancestor_size_[i] = a.file_size;
  // Its identity: the header (whose checksum covers the section table's) as recorded, and the
  // data area where this file's parent pages point. A private copy, so what is checked is used.
  FileHeader h;
  memcpy(&h, b, sizeof h);
  if (memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.version_major != kVersionMajor || h.header_size > a.file_size ||
      h.header_size < sizeof h || h.header_checksum != a.header_checksum || h.file_size != a.file_size ||
      h.created_ns != a.created_ns || h.page_size != header_.page_size) {
    return changed;
  }
  Scratch copy(h.header_size);
  if (!copy.ok()) return ReadStatus{ReadError::kOpenFailed, ENOMEM};
  memcpy(copy.get(), b, h.header_size);
  if (checksum_with_zeroed_u64(copy.get(), h.header_size, offsetof(FileHeader, header_checksum)) != a.header_checksum) {
    return changed;
  }
  const uint64_t entsize = h.section_entry_size, count = h.section_count;
  if (entsize < sizeof(SectionEntry) || entsize > 4096 || count > 65536 ||
      !fits(h.section_table_offset, count * entsize, a.file_size)) {
    return changed;
  }
  Scratch table(count * entsize);
  if (!table.ok()) return ReadStatus{ReadError::kOpenFailed, ENOMEM};
  memcpy(table.get(), b + h.section_table_offset, count * entsize);
  if (checksum(table.get(), count * entsize) != h.section_table_checksum) return changed;
  bool data_found = false;
  for (uint64_t k = 0; k < count; k++) {
    SectionEntry e;
    memcpy(&e, table.get() + k * entsize, sizeof e);
    if (e.type != uint32_t(SectionType::kData)) continue;
    if (data_found || e.offset != a.data_offset || e.length != a.data_length) return changed;
    data_found = true;
  }
  return data_found ? ReadStatus{} : changed;
}

}  // namespace uffdlazy::snap
