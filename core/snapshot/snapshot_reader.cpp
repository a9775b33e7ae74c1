#include "core/base/aside_mmap.h"
#include "core//snapshot/snapshot_reader.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>

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
  base_ = nullptr;
  map_size_ = 0;
  header_ = FileHeader{};
  strings_ = nullptr;
  modules_ = nullptr;
  regions_ = nullptr;
  index_ = nullptr;
  strings_length_ = module_count_ = region_count_ = index_count_ = index_checksum_ = 0;
  data_offset_ = data_length_ = 0;
  for (SectionView& v : process_sections_) v = SectionView{};
}

ReadStatus SnapshotReader::open(const char* path, bool native_page_size) {
  close();
  long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ReadStatus{ReadError::kOpenFailed, int(-fd)};
  struct stat st;
  long r = sys::fstat(int(fd), &st);
  if (r < 0) {
    sys::close(int(fd));
    return ReadStatus{ReadError::kOpenFailed, int(-r)};
  }
  if (!S_ISREG(st.st_mode)) {
    sys::close(int(fd));
    return error(ReadError::kNotRegularFile);
  }
  if (st.st_size == 0) {
    sys::close(int(fd));
    return error(ReadError::kEmpty);
  }
  long m = mmap_aside(size_t(st.st_size), PROT_READ, MAP_PRIVATE, int(fd), 0);
  sys::close(int(fd));
  if (sys::failed(m)) return ReadStatus{ReadError::kOpenFailed, int(-m)};
  base_ = reinterpret_cast<const uint8_t*>(m);
  map_size_ = uint64_t(st.st_size);
  ReadStatus s = validate(native_page_size);
  if (!s.ok()) close();
  return s;
}

ReadStatus SnapshotReader::validate(bool native_page_size) {
  const uint64_t size = map_size_;
  if (memcmp(base_, kMagic, size < sizeof kMagic ? size : sizeof kMagic) != 0) return error(ReadError::kBadMagic);
  if (size < offsetof(FileHeader, header_size)) return error(ReadError::kTruncated, size, kMinFixedSize);
  uint16_t version[2];
  memcpy(version, base_ + offsetof(FileHeader, version_major), sizeof version);
  // Before the checksum: a newer format may checksum differently, and "unsupported version" is
  // the useful message then.
  if (version[0] != kVersionMajor) return error(ReadError::kUnsupportedVersion, version[0], version[1]);
  if (size < kMinFixedSize) return error(ReadError::kTruncated, size, kMinFixedSize);

  uint32_t header_size, fixed_size;
  memcpy(&header_size, base_ + offsetof(FileHeader, header_size), 4);
  memcpy(&fixed_size, base_ + offsetof(FileHeader, fixed_size), 4);
  if (header_size > size) return error(ReadError::kTruncated, size, header_size);
  if (fixed_size < kMinFixedSize || header_size < fixed_size) {
    // The checksum cannot be trusted to cover these, so a damaged header is the likely story.
    return error(ReadError::kHeaderChecksum);
  }
  uint64_t stored;
  memcpy(&stored, base_ + offsetof(FileHeader, header_checksum), 8);
  if (checksum_with_zeroed_u64(base_, header_size, offsetof(FileHeader, header_checksum)) != stored) {
    return error(ReadError::kHeaderChecksum);
  }
  // Fields a later minor version appended stay unknown; fields it lacks read as zero.
  memcpy(&header_, base_, fixed_size < sizeof header_ ? fixed_size : sizeof header_);

  if (header_.file_size > size) return error(ReadError::kTruncated, size, header_.file_size);
  const uint32_t ps = header_.page_size;
  if (ps < kMinPageSize || ps > kMaxPageSize || (ps & (ps - 1))) return malformed("invalid page size");
  if (native_page_size && ps != getauxval(AT_PAGESZ)) {
    return error(ReadError::kPageSizeMismatch, ps, getauxval(AT_PAGESZ));
  }
  if (!fits(header_.exe_path_offset, uint64_t(header_.exe_path_length) + 1, header_size) ||
      header_.exe_path_offset < fixed_size || base_[header_.exe_path_offset + header_.exe_path_length] != 0) {
    return malformed("executable path outside the header");
  }
  if (header_.exe_id_length > kMaxIdLength) return malformed("executable id too long");

  ReadStatus s = validate_sections();
  if (!s.ok()) return s;
  return validate_regions();
}

ReadStatus SnapshotReader::validate_sections() {
  const uint64_t size = header_.file_size;
  const uint64_t entsize = header_.section_entry_size;
  const uint64_t count = header_.section_count;
  if (entsize < sizeof(SectionEntry) || entsize > 4096 || count > 65536) return malformed("bad section table shape");
  if (!fits(header_.section_table_offset, count * entsize, size)) {
    return error(ReadError::kTruncated, map_size_, end_of(header_.section_table_offset, count * entsize));
  }
  const uint8_t* table = base_ + header_.section_table_offset;
  if (checksum(table, count * entsize) != header_.section_table_checksum) {
    return error(ReadError::kIndexChecksum, 0, 0, "section table");
  }
  bool seen[6] = {};
  for (uint64_t i = 0; i < count; i++) {
    SectionEntry e;
    memcpy(&e, table + i * entsize, sizeof e);
    if (!fits(e.offset, e.length, size)) return error(ReadError::kTruncated, map_size_, end_of(e.offset, e.length));
    if (e.type >= uint32_t(ProcessSection::kProcess) && e.type <= uint32_t(ProcessSection::kDescriptors)) {
      // A process image's sections (process_format.h): checked here, interpreted by ProcessImage.
      const uint32_t slot = e.type - uint32_t(ProcessSection::kProcess);
      if (process_sections_[slot].length || (e.offset % 8)) return malformed("bad process image section");
      if (checksum(base_ + e.offset, e.length) != e.checksum) {
        return error(ReadError::kIndexChecksum, 0, 0, "process image section");
      }
      process_sections_[slot] = SectionView{base_ + e.offset, e.length};
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
    // The page index is checked after the regions, so damage there can be blamed on one region.
    if (!(e.flags & kSectionNoChecksum) && type != SectionType::kPageIndex &&
        checksum(base_ + e.offset, e.length) != e.checksum) {
      return error(ReadError::kIndexChecksum, 0, 0, section_name(type));
    }
    const void* p = base_ + e.offset;
    switch (type) {
      case SectionType::kStrings:
        strings_ = static_cast<const char*>(p);
        strings_length_ = e.length;
        break;
      case SectionType::kModules:
        if (e.length % sizeof(ModuleRecord) || e.length / sizeof(ModuleRecord) >= kNoModule) {
          return malformed("module table size");
        }
        modules_ = static_cast<const ModuleRecord*>(p);
        module_count_ = uint32_t(e.length / sizeof(ModuleRecord));
        break;
      case SectionType::kRegions:
        if (e.length % sizeof(RegionRecord)) return malformed("region table size");
        regions_ = static_cast<const RegionRecord*>(p);
        region_count_ = e.length / sizeof(RegionRecord);
        break;
      case SectionType::kPageIndex:
        if (e.length % sizeof(PageEntry)) return malformed("page index size");
        index_ = static_cast<const PageEntry*>(p);
        index_count_ = e.length / sizeof(PageEntry);
        index_checksum_ = e.checksum;
        break;
      case SectionType::kData:
        if (e.offset % header_.page_size || e.length % header_.page_size) return malformed("misaligned data area");
        data_offset_ = e.offset;
        data_length_ = e.length;
        break;
    }
  }
  for (uint32_t t = uint32_t(SectionType::kStrings); t <= uint32_t(SectionType::kData); t++) {
    if (!seen[t]) return malformed("a required section is missing");
  }
  for (uint32_t i = 0; i < module_count_; i++) {
    const ModuleRecord& m = modules_[i];
    if (!fits(m.path_offset, uint64_t(m.path_length) + 1, strings_length_) ||
        strings_[m.path_offset + m.path_length] != 0 || m.id_length > kMaxIdLength) {
      return malformed("module record out of range");
    }
  }
  return ReadStatus{};
}

ReadStatus SnapshotReader::validate_regions() {
  const uint64_t ps = header_.page_size;
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    if (rec.index_first > index_count_ || rec.page_count > index_count_ - rec.index_first) {
      return malformed("region index out of range");
    }
    if (checksum(index_ + rec.index_first, rec.page_count * sizeof(PageEntry)) != rec.index_checksum) {
      return error(ReadError::kIndexChecksum, r, 0, nullptr);
    }
  }
  if (checksum(index_, index_count_ * sizeof(PageEntry)) != index_checksum_) {
    return error(ReadError::kIndexChecksum, 0, 0, "page index");
  }

  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    if (rec.site_module != kNoModule && rec.site_module >= module_count_) return malformed("region module out of range");
    if (rec.page_count != (rec.length + ps - 1) / ps) return malformed("region page count disagrees with its length");
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
  return ReadStatus{};
}

SectionView SnapshotReader::process_section(uint32_t type) const {
  const uint32_t first = uint32_t(ProcessSection::kProcess), last = uint32_t(ProcessSection::kDescriptors);
  if (type < first || type > last) return SectionView{};
  return process_sections_[type - first];
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
  for (uint64_t r = 0; r < region_count_; r++) {
    const RegionRecord& rec = regions_[r];
    rep.pages += rec.page_count;
    for (uint64_t i = 0; i < rec.page_count; i++) {
      const PageKind kind = entry_kind(entry(r, i));
      if (kind == PageKind::kAbsent || kind == PageKind::kZero) continue;
      rep.pages_checked++;
      if (kind == PageKind::kData) rep.blocks_checked++;
      if (!verify_page(r, i)) {
        if (rep.bad_pages++ == 0) {
          rep.first_bad_region = r;
          rep.first_bad_page = i;
        }
      }
    }
  }
  return rep;
}

}  // namespace uffdlazy::snap
