// Builds snapshot files the writer would never produce: a good file's header, data area, strings
// and modules, with a region table and page index of the test's choosing, and every checksum
// recomputed, so the reader's structural checks (not its checksums) are what refuses them.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/format.h"

namespace uffdlazy::snap::testing {

inline SectionEntry find_section(const std::vector<uint8_t>& file, SectionType type) {
  FileHeader h;
  memcpy(&h, file.data(), sizeof h);
  for (uint32_t i = 0; i < h.section_count; i++) {
    SectionEntry e;
    memcpy(&e, file.data() + h.section_table_offset + uint64_t(i) * h.section_entry_size, sizeof e);
    if (e.type == uint32_t(type)) return e;
  }
  return SectionEntry{};
}

template <typename T>
std::vector<T> section_records(const std::vector<uint8_t>& file, SectionType type) {
  const SectionEntry e = find_section(file, type);
  std::vector<T> out(e.length / sizeof(T));
  if (!out.empty()) memcpy(out.data(), file.data() + e.offset, out.size() * sizeof(T));
  return out;
}

// Each region's index_checksum is recomputed over the slice it claims (when that slice lies in
// `index`), so only the property under test is wrong.
inline std::vector<uint8_t> rebuild_snapshot(const std::vector<uint8_t>& good, std::vector<RegionRecord> regions,
                                             const std::vector<PageEntry>& index) {
  FileHeader h;
  memcpy(&h, good.data(), sizeof h);
  const SectionEntry data = find_section(good, SectionType::kData);
  const SectionEntry strings = find_section(good, SectionType::kStrings);
  const SectionEntry modules = find_section(good, SectionType::kModules);
  for (RegionRecord& r : regions) {
    if (r.index_first <= index.size() && r.page_count <= index.size() - r.index_first) {
      r.index_checksum = checksum(index.data() + r.index_first, r.page_count * sizeof(PageEntry));
    }
  }
  std::vector<uint8_t> out(good.begin(), good.begin() + long(data.offset + data.length));
  std::vector<SectionEntry> table;
  auto append = [&](SectionType type, uint32_t flags, const void* p, uint64_t len) {
    out.resize(align_up(out.size(), 8));
    const uint64_t at = out.size();
    out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + len);
    table.push_back(SectionEntry{uint32_t(type), flags, at, len, checksum(p, len)});
  };
  table.push_back(data);
  append(SectionType::kStrings, kSectionRequired, good.data() + strings.offset, strings.length);
  append(SectionType::kModules, kSectionRequired, good.data() + modules.offset, modules.length);
  append(SectionType::kRegions, kSectionRequired, regions.data(), regions.size() * sizeof(RegionRecord));
  append(SectionType::kPageIndex, kSectionRequired, index.data(), index.size() * sizeof(PageEntry));
  out.resize(align_up(out.size(), 8));
  h.section_table_offset = out.size();
  h.section_count = uint32_t(table.size());
  h.section_entry_size = sizeof(SectionEntry);
  h.section_table_checksum = checksum(table.data(), table.size() * sizeof(SectionEntry));
  const uint8_t* t = reinterpret_cast<const uint8_t*>(table.data());
  out.insert(out.end(), t, t + table.size() * sizeof(SectionEntry));
  h.file_size = out.size();
  memcpy(out.data(), &h, sizeof h);
  h.header_checksum = checksum_with_zeroed_u64(out.data(), h.header_size, offsetof(FileHeader, header_checksum));
  memcpy(out.data(), &h, sizeof h);
  return out;
}

// Per-kind counts of region r's entries, as the reader checks them.
inline void recount(RegionRecord& r, const std::vector<PageEntry>& index) {
  r.absent_pages = r.zero_pages = r.data_pages = r.duplicate_pages = 0;
  for (uint64_t i = 0; i < r.page_count && r.index_first + i < index.size(); i++) {
    switch (entry_kind(index[r.index_first + i])) {
      case PageKind::kAbsent: r.absent_pages++; break;
      case PageKind::kZero: r.zero_pages++; break;
      case PageKind::kData: r.data_pages++; break;
      case PageKind::kDuplicate: r.duplicate_pages++; break;
    }
  }
}

// The aliasing file of the reliability issue, scaled by the caller: `regions` regions that all
// claim the same `pages` entries of the page index, each of them `entry` (absent by default).
inline std::vector<uint8_t> aliasing_snapshot(const std::vector<uint8_t>& good, uint64_t regions, uint64_t pages,
                                              uint32_t page_size,
                                              PageEntry entry = make_entry(PageKind::kAbsent, 0, 0)) {
  std::vector<PageEntry> index(pages, entry);
  RegionRecord r{};
  r.start = 0x10000000;
  r.length = pages * page_size;
  r.prot = 3;
  r.map_flags = 0x22;
  r.page_count = pages;
  r.index_first = 0;
  r.site_module = kNoModule;
  recount(r, index);
  return rebuild_snapshot(good, std::vector<RegionRecord>(regions, r), index);
}

}  // namespace uffdlazy::snap::testing
