// The on-disk layout of a uffdlazy snapshot, version 1.x. FORMAT.md is the prose version; this
// file is the one the code compiles against, so every size is pinned by a static_assert.
//
// All integers are little-endian. The structs are read and written by memcpy on little-endian
// hosts only (x86_64, aarch64), which the static_assert on the byte order below guarantees.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/align.h"

namespace uffdlazy::snap {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the snapshot format is little-endian");

inline constexpr char kMagic[8] = {'U', 'F', 'F', 'D', 'S', 'N', 'A', 'P'};
inline constexpr uint16_t kVersionMajor = 2;  // what this build writes
inline constexpr uint16_t kVersionMinor = 1;  // a reader accepts any minor of its major
// 1.0: an index entry for every page of a region. 1.1: FileHeader::index_digest (zeros in a 1.0
// file: no digest). 2.0: runs of stored pages (RunRecord), ancestors, writer_version. 2.1: packed
// pages (PageKind::kPacked, SectionType::kPacked, required: a 2.0 reader refuses a file that has
// them, and reads one that has none). This build
// still reads 1.x (SnapshotReader turns its index into runs; RegionRecordV1 below).
inline constexpr uint16_t kOldestReadMajor = 1;

inline constexpr uint32_t kMinPageSize = 4096;
inline constexpr uint32_t kMaxPageSize = 1u << 21;
inline constexpr uint32_t kMaxIdLength = 64;  // build-ids are 8..20 bytes in practice
inline constexpr uint32_t kMaxPathLength = 4095;
inline constexpr uint32_t kWriterVersionLength = 32;  // with the NUL that always ends it

// Header flags describe how the capture was made; they never change how the file is read
// (anything that does needs a new major version or a required section).
inline constexpr uint64_t kFlagNoAslr = 1u << 0;      // the target ran with ASLR disabled
inline constexpr uint64_t kFlagPartial = 1u << 1;     // the capture skipped some regions on purpose

// How a module (executable or library) is identified, strongest first.
enum class IdKind : uint32_t {
  kNone = 0,
  kGnuBuildId = 1,   // the bytes of the ELF NT_GNU_BUILD_ID note
  kContentXxh3 = 2,  // 8 bytes: XXH3-64 of the whole file, when it has no build-id
};

struct FileHeader {
  char magic[8];
  uint16_t version_major;
  uint16_t version_minor;
  uint32_t header_size;      // bytes covered by header_checksum: fixed part + executable path
  uint64_t header_checksum;  // XXH3-64 of [0, header_size) with this field read as zero
  uint32_t fixed_size;       // sizeof(FileHeader) of the writer; grows only by appending fields
  uint32_t page_size;
  uint64_t flags;
  uint64_t created_ns;  // CLOCK_REALTIME, nanoseconds since the epoch
  uint64_t file_size;   // the whole file; a shorter file is truncated
  uint64_t section_table_offset;
  uint32_t section_count;
  uint32_t section_entry_size;
  uint64_t section_table_checksum;  // XXH3-64 of the section table
  uint32_t exe_path_offset;         // from the start of the file, inside the header
  uint32_t exe_path_length;         // bytes, without the terminating NUL that follows
  uint32_t exe_id_kind;             // IdKind
  uint32_t exe_id_length;
  uint8_t exe_id[kMaxIdLength];
  // Since 1.1: SHA-256 of the snapshot's metadata (index_digest.h says which bytes), so that a
  // snapshot fetched from elsewhere can be authenticated and pinned; all zeros: none recorded (1.0).
  uint8_t index_digest[32];
  // Since 2.0: the uffdlazy release (and commit) that wrote the file, as `uffdlazy --version`
  // prints it, NUL-terminated and NUL-padded (a 1.x file has none: zeros, or nothing at all).
  char writer_version[kWriterVersionLength];
  uint8_t reserved[32];
};
static_assert(sizeof(FileHeader) == 256);
static_assert(offsetof(FileHeader, header_checksum) == 16);
static_assert(offsetof(FileHeader, exe_id) == 96);
static_assert(offsetof(FileHeader, index_digest) == 160);
static_assert(offsetof(FileHeader, writer_version) == 192);
// Every field a 1.0 reader needs lies below this; a header declaring a smaller fixed part is bad.
inline constexpr uint32_t kMinFixedSize = offsetof(FileHeader, index_digest);

enum class SectionType : uint32_t {
  kStrings = 1,      // NUL-terminated strings referenced by offset
  kModules = 2,      // ModuleRecord[]
  kRegions = 3,      // RegionRecord[]
  kPageEntries = 4,  // PageEntry[]: one per stored page, region by region, run by run
  kData = 5,         // page-aligned page contents; no section checksum (every block has its own)
  kPageRuns = 6,     // RunRecord[]: each region's runs of stored pages, in page order
  kAncestors = 7,    // AncestorRecord[]: the images an incremental image's parent pages lie in
  kPacked = 8,       // 2.1: packed pages' blocks (their non-zero spans), in entry order
};
inline constexpr uint32_t kLastSectionType = uint32_t(SectionType::kPacked);

inline constexpr uint32_t kSectionRequired = 1u << 0;    // a reader that does not know it must refuse
inline constexpr uint32_t kSectionNoChecksum = 1u << 1;  // checksum is 0 and means nothing

struct SectionEntry {
  uint32_t type;  // SectionType, or a type this reader does not know (skipped unless required)
  uint32_t flags;
  uint64_t offset;
  uint64_t length;
  uint64_t checksum;  // XXH3-64 of [offset, offset + length)
};
static_assert(sizeof(SectionEntry) == 32);

struct ModuleRecord {
  uint32_t path_offset;  // into the strings section
  uint32_t path_length;  // without the NUL
  uint32_t id_kind;      // IdKind
  uint32_t id_length;
  uint8_t id[kMaxIdLength];
  uint8_t reserved[16];
};
static_assert(sizeof(ModuleRecord) == 96);

inline constexpr uint32_t kNoModule = 0xffffffffu;

struct RegionRecord {
  uint64_t start;
  uint64_t length;
  uint32_t prot;       // PROT_* at capture
  uint32_t map_flags;  // MAP_* the region was created with
  uint64_t page_count;  // ceil(length / page size): its pages, stored or not
  // Its stored pages: run_count runs from run_first in the runs section, and their entry_count
  // entries (the runs' pages together) from entry_first in the entries section.
  uint64_t run_first;
  uint64_t run_count;
  uint64_t entry_first;
  uint64_t entry_count;
  // Identity that survives ASLR: the allocation call site as a module and an offset inside it,
  // which mapping from that site this was (0 = the first), and the length it was created with.
  uint32_t site_module;  // index into the modules section, or kNoModule
  uint32_t reserved0;
  uint64_t site_offset;
  uint64_t ordinal;
  uint64_t alloc_length;
  // Per-kind counts, so a reader can summarise without walking the index (checked at open).
  uint64_t data_pages;
  uint64_t zero_pages;
  uint64_t duplicate_pages;
  uint64_t parent_pages;
  uint64_t absent_pages;  // page_count - entry_count: in no run
  uint64_t packed_pages;  // 2.1 (0 in a 2.0 file): entries of kind packed
  uint8_t reserved[16];
};
static_assert(sizeof(RegionRecord) == 160);
static_assert(offsetof(RegionRecord, site_module) == 64);
static_assert(offsetof(RegionRecord, data_pages) == 96);

// Format 1.x's region record (still read: SnapshotReader turns a 1.x index into runs). Its pages
// had one PageEntry each, kAbsent ones included, index_first.. in the page index (section 4).
struct RegionRecordV1 {
  uint64_t start;
  uint64_t length;
  uint32_t prot;
  uint32_t map_flags;
  uint64_t page_count;
  uint64_t index_first;     // first PageEntry of this region in the page index
  uint64_t index_checksum;  // XXH3-64 of this region's page_count entries
  uint32_t site_module;
  uint32_t reserved0;
  uint64_t site_offset;
  uint64_t ordinal;
  uint64_t alloc_length;
  uint64_t data_pages;
  uint64_t zero_pages;
  uint64_t duplicate_pages;
  uint64_t absent_pages;
  uint8_t reserved[16];
};
static_assert(sizeof(RegionRecordV1) == 128);
static_assert(offsetof(RegionRecordV1, site_module) == 48);

// A run of consecutive stored pages of one region. Pages in no run are absent.
struct RunRecord {
  uint64_t first_page;  // within the region
  uint64_t entry;       // the entry of first_page, in the entries section (the next ones follow)
  uint32_t pages;       // at least 1
  uint32_t reserved;
};
static_assert(sizeof(RunRecord) == 24);

enum class PageKind : uint8_t {
  kAbsent = 0,     // in no run (never an entry's kind): a restore leaves it to the kernel (zero-fill)
  kZero = 1,       // existed and was all zero bytes; no data stored
  kData = 2,       // the first page with this content; offset points at its block
  kDuplicate = 3,  // same content as an earlier page; offset points at that page's block
  kParent = 4,     // unchanged since an ancestor image: offset points at a block of that file
  kPacked = 5,     // 2.1: mostly zero; only its non-zero spans are stored, in the packed section
};

// One per stored page: the block offset (a multiple of the page size, so its low 12 bits are
// free) or'ed with the kind (bits 0-7) and, for kParent, the ancestor's depth (bits 8-11: 1 the
// parent, 2 its parent, ...), and the XXH3-64 of the page's content (0 for zero pages).
struct PageEntry {
  uint64_t offset_kind;
  uint64_t checksum;
};
static_assert(sizeof(PageEntry) == 16);

inline constexpr uint64_t kKindMask = 0xff;
inline constexpr uint64_t kDepthShift = 8;
inline constexpr uint64_t kDepthMask = uint64_t(0xf) << kDepthShift;
inline constexpr uint64_t kOffsetMask = ~uint64_t(0xfff);
inline constexpr uint32_t kMaxAncestors = 15;  // what the depth bits hold

inline PageKind entry_kind(const PageEntry& e) { return PageKind(e.offset_kind & kKindMask); }
inline uint64_t entry_offset(const PageEntry& e) { return e.offset_kind & kOffsetMask; }
inline uint32_t entry_depth(const PageEntry& e) { return uint32_t((e.offset_kind & kDepthMask) >> kDepthShift); }
inline PageEntry make_entry(PageKind k, uint64_t offset, uint64_t checksum, uint32_t depth = 0) {
  return PageEntry{offset | (uint64_t(depth) << kDepthShift) | uint64_t(k), checksum};
}

// A packed page (2.1): the entry's bits 12-63 hold its block's byte offset in the packed section,
// its checksum is the XXH3-64 of the whole page as unpacked. A block is a count of spans, then the
// spans, each its gap (zero bytes since the previous span's end, or since the page's start for the
// first), its length and its `length` bytes; every byte of the page in no span is zero. Numbers are
// LEB128 varints of at most 3 bytes (a page is at most 2 MiB). At least one span; lengths at least
// 1; every gap but the first at least 1 (spans never touch); the last span ends inside the page.
// Blocks follow each other in entry order and fill the section: the first packed entry's block is
// at 0, each next one where the previous ended.
inline constexpr uint64_t kPackedShift = 12;
inline constexpr uint32_t kPackedMergeGap = 2;  // zero gaps this short stay inside a span
inline uint64_t packed_offset(const PageEntry& e) { return e.offset_kind >> kPackedShift; }
inline PageEntry make_packed_entry(uint64_t offset, uint64_t checksum) {
  return PageEntry{(offset << kPackedShift) | uint64_t(PageKind::kPacked), checksum};
}
// Appends v as a varint at out + *used when it fits in limit; false otherwise.
inline bool put_varint(uint8_t* out, uint64_t* used, uint64_t limit, uint64_t v) {
  do {
    if (*used >= limit) return false;
    out[(*used)++] = uint8_t((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return true;
}
// Reads a varint of at most 3 bytes from [*at, avail); false when it is cut short or longer.
inline bool get_varint(const uint8_t* in, uint64_t* at, uint64_t avail, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 21; shift += 7) {
    if (*at >= avail) return false;
    const uint8_t b = in[(*at)++];
    *v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}
// Packs a page (page_size bytes) into out (room for `limit` bytes) when its packed form takes at
// most `limit` bytes; returns that size, or 0 when it would not fit (or the page is all zero: no
// spans). The span count goes first: written last, into the room left for it.
inline uint64_t pack_page(const void* page, uint64_t page_size, uint8_t* out, uint64_t limit) {
  const uint8_t* p = static_cast<const uint8_t*>(page);
  constexpr uint64_t kCountRoom = 3;  // the count's varint, at most
  if (limit <= kCountRoom) return 0;
  uint64_t used = kCountRoom, spans = 0, i = 0, prev_end = 0;
  while (i < page_size) {
    // Skip zero words quickly, then zero bytes.
    while (i + 8 <= page_size && !(i % 8)) {
      uint64_t w;
      __builtin_memcpy(&w, p + i, 8);
      if (w) break;
      i += 8;
    }
    if (i >= page_size) break;
    if (!p[i]) {
      i++;
      continue;
    }
    uint64_t end = i + 1;  // one past the span's last non-zero byte
    for (uint64_t j = end; j < page_size && j - end <= kPackedMergeGap;) {
      if (p[j]) end = ++j;
      else j++;
    }
    if (!put_varint(out, &used, limit, i - prev_end) || !put_varint(out, &used, limit, end - i) ||
        limit - used < end - i) {
      return 0;
    }
    __builtin_memcpy(out + used, p + i, end - i);
    used += end - i;
    spans++;
    prev_end = i = end;
  }
  if (!spans) return 0;
  // The count, moved down to where the spans begin.
  uint8_t count[kCountRoom];
  uint64_t n = 0;
  put_varint(count, &n, kCountRoom, spans);
  const uint64_t shift = kCountRoom - n;
  for (uint64_t k = 0; k < n; k++) out[shift + k] = count[k];
  __builtin_memmove(out, out + shift, used - shift);
  return used - shift;
}
// Unpacks the block at `block` (at most `avail` bytes of the section from there) into a page of
// page_size bytes. Returns the block's size, or 0 when it is malformed (cut short, a span out of
// the page, touching the previous one or empty): the page is then left partly written.
inline uint64_t unpack_page(const uint8_t* block, uint64_t avail, uint64_t page_size, uint8_t* page) {
  uint64_t at = 0, spans = 0, end = 0;
  if (!get_varint(block, &at, avail, &spans) || spans == 0 || spans > page_size / 2 + 1) return 0;
  for (uint64_t k = 0; k < spans; k++) {
    uint64_t gap, length;
    if (!get_varint(block, &at, avail, &gap) || !get_varint(block, &at, avail, &length)) return 0;
    if ((k && gap == 0) || length == 0 || gap > page_size - end || length > page_size - end - gap ||
        length > avail - at) {
      return 0;
    }
    __builtin_memset(page + end, 0, gap);
    __builtin_memcpy(page + end + gap, block + at, length);
    at += length;
    end += gap + length;
  }
  __builtin_memset(page + end, 0, page_size - end);
  return at;
}

// An image an incremental image takes unchanged pages from: record i is the ancestor at depth
// i + 1 (the parent first). Its identity is what a reader checks before using it.
struct AncestorRecord {
  uint64_t header_checksum;  // the ancestor's header_checksum, which covers its section table
  uint64_t file_size;
  uint64_t created_ns;
  uint64_t data_offset;  // its data area: every kParent offset of that depth lies inside
  uint64_t data_length;
  uint32_t path_offset;  // where it was written (absolute), in the strings section
  uint32_t path_length;  // without the NUL
  uint8_t reserved[16];
};
static_assert(sizeof(AncestorRecord) == 64);

}  // namespace uffdlazy::snap
