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
    case SectionType::kPageIndex: return "page index";
    case SectionType::kData: return "data area";
  }
  return "section";
}

}  // namespace

void SnapshotReader::close() {
  if (base_) sys::munmap(const_cast<uint8_t*>(base_), map_size_);
  if (private_) sys::munmap(private_, private_size_);
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
  index_ = nullptr;
  strings_length_ = module_count_ = region_count_ = index_count_ = 0;
  data_offset_ = data_length_ = index_offset_ = 0;
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
  if (version[0] != kVersionMajor) return error(ReadError::kUnsupportedVersion, version[0], version[1]);
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
  if (header_.fixed_size >= offsetof(FileHeader, writer_version) + kWriterVersionLength) {
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
  bool seen[6] = {};
  for (uint64_t i = 0; i < count; i++) {
    SectionEntry e;
    memcpy(&e, table.get() + i * entsize, sizeof e);
    if (!fits(e.offset, e.length, size)) return error(ReadError::kTruncated, map_size_, end_of(e.offset, e.length));
    if (e.type >= uint32_t(ProcessSection::kProcess) && e.type <= uint32_t(ProcessSection::kDescriptors)) {
      // A process image's (process_format.h): copied and checked with the metadata below.
      Section& p = process_[e.type - uint32_t(ProcessSection::kProcess)];
      if (p.checked || (e.offset % 8)) return malformed("bad process image section");
      p = Section{e.offset, e.length, e.checksum, true};
      continue;
    }
    if (e.type < uint32_t(SectionType::kStrings) || e.type > uint32_t(SectionType::kData)) {
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
        if (e.length % sizeof(RegionRecord)) return malformed("region table size");
        break;
      case SectionType::kPageIndex:
        if (e.length % sizeof(PageEntry)) return malformed("page index size");
        break;
      case SectionType::kData:
        if (e.offset % header_.page_size || e.length % header_.page_size) return malformed("misaligned data area");
        break;
    }
    // The page index's checksum is always checked (after the regions', so damage there can be
    // blamed on one region); the data area's only if it has one.
    const bool checked = type == SectionType::kPageIndex || !(e.flags & kSectionNoChecksum);
    sections_[e.type] = Section{e.offset, e.length, e.checksum, checked};
  }
  for (uint32_t t = uint32_t(SectionType::kStrings); t <= uint32_t(SectionType::kData); t++) {
    if (!seen[t]) return malformed("a required section is missing");
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::copy_metadata(const uint8_t* header_copy) {
  const Section& strings = sections_[uint32_t(SectionType::kStrings)];
  const Section& modules = sections_[uint32_t(SectionType::kModules)];
  const Section& regions = sections_[uint32_t(SectionType::kRegions)];
  const Section& index = sections_[uint32_t(SectionType::kPageIndex)];
  const Section& data = sections_[uint32_t(SectionType::kData)];
  // Each part lies inside the mapped file, so the sum cannot overflow.
  const uint64_t path_at = 0;
  const uint64_t strings_at = align_up(path_at + header_.exe_path_length + 1, 8);
  const uint64_t modules_at = align_up(strings_at + strings.length, 8);
  const uint64_t regions_at = align_up(modules_at + modules.length, 8);
  const uint64_t index_at = align_up(regions_at + regions.length, 8);
  uint64_t process_at[4];
  uint64_t total = align_up(index_at + index.length, 8);
  for (int i = 0; i < 4; i++) {
    process_at[i] = total;
    total = align_up(total + process_[i].length, 8);
  }
  long m = mmap_aside(size_t(total), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(m)) return ReadStatus{ReadError::kOpenFailed, int(-m)};
  private_ = reinterpret_cast<uint8_t*>(m);
  private_size_ = total;
  memcpy(private_ + path_at, header_copy + header_.exe_path_offset, header_.exe_path_length + 1);
  memcpy(private_ + strings_at, base_ + strings.offset, strings.length);
  memcpy(private_ + modules_at, base_ + modules.offset, modules.length);
  memcpy(private_ + regions_at, base_ + regions.offset, regions.length);
  memcpy(private_ + index_at, base_ + index.offset, index.length);
  for (int i = 0; i < 4; i++) {
    if (!process_[i].checked) continue;
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
  index_ = reinterpret_cast<const PageEntry*>(private_ + index_at);
  index_count_ = index.length / sizeof(PageEntry);
  index_offset_ = index.offset;
  data_offset_ = data.offset;
  data_length_ = data.length;
  for (uint32_t i = 0; i < module_count_; i++) {
    const ModuleRecord& mod = modules_[i];
    if (!fits(mod.path_offset, uint64_t(mod.path_length) + 1, strings_length_) ||
        strings_[mod.path_offset + mod.path_length] != 0 || mod.id_length > kMaxIdLength) {
      return malformed("module record out of range");
    }
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::validate_regions() {
  // Region i's entries follow region i-1's and together the regions own the whole index, so the
  // checks below (and every later walk of all pages) touch each entry once.
  uint64_t next = 0;
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    if (rec.index_first != next) return malformed("a region's page index entries do not follow the previous region's");
    if (rec.page_count > index_count_ - next) return malformed("region index out of range");
    if (checksum(index_ + next, rec.page_count * sizeof(PageEntry)) != rec.index_checksum) {
      return error(ReadError::kIndexChecksum, r, 0, nullptr);
    }
    next += rec.page_count;
  }
  const Section& index = sections_[uint32_t(SectionType::kPageIndex)];
  if (checksum(index_, index_count_ * sizeof(PageEntry)) != index.checksum) {
    return error(ReadError::kIndexChecksum, 0, 0, "page index");
  }
  if (next != index_count_) return malformed("the page index has entries no region owns");
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
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    if (rec.site_module != kNoModule && rec.site_module >= module_count_) return malformed("region module out of range");
    if (rec.page_count != rec.length / ps + (rec.length % ps != 0)) {
      return malformed("region page count disagrees with its length");
    }
    uint64_t counts[4] = {};
    const PageEntry* e = index_ + rec.index_first;
    for (uint64_t i = 0; i < rec.page_count; i++) {
      const uint64_t kind = e[i].offset_kind & kKindMask;
      const uint64_t off = entry_offset(e[i]);
      if (kind > uint64_t(PageKind::kDuplicate) || (e[i].offset_kind & ~kOffsetMask & ~kKindMask)) {
        return malformed("unknown page kind");
      }
      if (kind >= uint64_t(PageKind::kData)) {
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
    if (counts[0] != rec.absent_pages || counts[1] != rec.zero_pages || counts[2] != rec.data_pages ||
        counts[3] != rec.duplicate_pages) {
      return malformed("region page counts disagree with its index");
    }
  }
  if (data_entries != blocks) return malformed("the data area has a block no data entry refers to");
  return ReadStatus{};
}

SectionView SnapshotReader::process_section(uint32_t type) const {
  const uint32_t first = uint32_t(ProcessSection::kProcess), last = uint32_t(ProcessSection::kDescriptors);
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

PageRef SnapshotReader::page(uint64_t region, uint64_t page) const {
  const PageEntry& e = entry(region, page);
  const PageKind kind = entry_kind(e);
  if (kind == PageKind::kAbsent || kind == PageKind::kZero) return PageRef{kind, nullptr, 0, 0};
  return PageRef{kind, base_ + entry_offset(e), e.checksum, entry_offset(e)};
}

bool SnapshotReader::verify_page(uint64_t region, uint64_t page_no) const {
  const PageRef p = page(region, page_no);
  if (!p.data) return true;
  return checksum(p.data, header_.page_size) == p.checksum;
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
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    rep.pages += rec.page_count;
    for (uint64_t i = 0; i < rec.page_count; i++) {
      const PageEntry& e = entry(r, i);
      const PageKind kind = entry_kind(e);
      if (kind == PageKind::kAbsent || kind == PageKind::kZero) continue;
      rep.pages_checked++;
      const uint64_t off = entry_offset(e);
      const uint64_t block = (off - data_offset_) / ps;
      uint64_t actual;
      if (kind == PageKind::kData || !hashes) {
        actual = checksum(base_ + off, ps);
        if (kind == PageKind::kData) {
          rep.blocks_checked++;
          if (hashes) hashes[block] = actual;
        }
      } else {
        actual = hashes[block];
      }
      if (actual != e.checksum && rep.bad_pages++ == 0) {
        rep.first_bad_region = r;
        rep.first_bad_page = i;
      }
    }
  }
  return rep;
}

}  // namespace uffdlazy::snap
