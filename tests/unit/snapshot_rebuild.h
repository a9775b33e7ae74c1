// Builds snapshot files the writer would never produce: a good file's header, data area, strings
// and modules, with a region table, page runs, page entries (and ancestors) of the test's choosing,
// and every checksum recomputed, so the reader's structural checks (not its checksums) are what
// refuses them.
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

// The strings section of `good` is kept; extra strings (ancestor paths) are appended to it. With
// drop_data the data area is left empty (for entries that no longer point into it).
inline std::vector<uint8_t> rebuild_snapshot(const std::vector<uint8_t>& good, const std::vector<RegionRecord>& regions,
                                             const std::vector<RunRecord>& runs, const std::vector<PageEntry>& entries,
                                             const std::vector<AncestorRecord>& ancestors = {},
                                             const std::vector<char>& extra_strings = {}, bool drop_data = false) {
  FileHeader h;
  memcpy(&h, good.data(), sizeof h);
  SectionEntry data = find_section(good, SectionType::kData);
  if (drop_data) data.length = 0;
  const SectionEntry strings = find_section(good, SectionType::kStrings);
  const SectionEntry modules = find_section(good, SectionType::kModules);
  std::vector<uint8_t> out(good.begin(), good.begin() + long(data.offset + data.length));
  std::vector<SectionEntry> table;
  auto append = [&](SectionType type, uint32_t flags, const void* p, uint64_t len) {
    out.resize(align_up(out.size(), 8));
    const uint64_t at = out.size();
    out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + len);
    table.push_back(SectionEntry{uint32_t(type), flags, at, len, checksum(p, len)});
  };
  std::vector<uint8_t> all_strings(good.begin() + long(strings.offset), good.begin() + long(strings.offset + strings.length));
  all_strings.insert(all_strings.end(), extra_strings.begin(), extra_strings.end());
  table.push_back(data);
  append(SectionType::kStrings, kSectionRequired, all_strings.data(), all_strings.size());
  append(SectionType::kModules, kSectionRequired, good.data() + modules.offset, modules.length);
  append(SectionType::kRegions, kSectionRequired, regions.data(), regions.size() * sizeof(RegionRecord));
  append(SectionType::kPageEntries, kSectionRequired, entries.data(), entries.size() * sizeof(PageEntry));
  append(SectionType::kPageRuns, kSectionRequired, runs.data(), runs.size() * sizeof(RunRecord));
  if (!ancestors.empty()) {
    append(SectionType::kAncestors, kSectionRequired, ancestors.data(), ancestors.size() * sizeof(AncestorRecord));
  }
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

// Region r's counts as the reader checks them: entry_count from its runs, the per-kind counts
// from those runs' entries (as far as they lie in `entries`), absent pages the rest.
inline void recount(RegionRecord& r, const std::vector<RunRecord>& runs, const std::vector<PageEntry>& entries) {
  r.entry_count = r.zero_pages = r.data_pages = r.duplicate_pages = r.parent_pages = 0;
  for (uint64_t k = 0; k < r.run_count && r.run_first + k < runs.size(); k++) {
    const RunRecord& run = runs[r.run_first + k];
    r.entry_count += run.pages;
    for (uint64_t i = 0; i < run.pages && run.entry + i < entries.size(); i++) {
      switch (entry_kind(entries[run.entry + i])) {
        case PageKind::kZero: r.zero_pages++; break;
        case PageKind::kData: r.data_pages++; break;
        case PageKind::kDuplicate: r.duplicate_pages++; break;
        case PageKind::kParent: r.parent_pages++; break;
        default: break;
      }
    }
  }
  r.absent_pages = r.page_count - r.entry_count;
}

// The aliasing file of the reliability issue, scaled by the caller: `regions` regions that all
// claim the same run of `pages` entries, each of them `entry` (zero by default).
inline std::vector<uint8_t> aliasing_snapshot(const std::vector<uint8_t>& good, uint64_t regions, uint64_t pages,
                                              uint32_t page_size,
                                              PageEntry entry = make_entry(PageKind::kZero, 0, 0)) {
  std::vector<PageEntry> entries(pages, entry);
  std::vector<RunRecord> runs = {RunRecord{0, 0, uint32_t(pages), 0}};
  RegionRecord r{};
  r.start = 0x10000000;
  r.length = pages * page_size;
  r.prot = 3;
  r.map_flags = 0x22;
  r.page_count = pages;
  r.run_first = 0;
  r.run_count = 1;
  r.entry_first = 0;
  r.site_module = kNoModule;
  recount(r, runs, entries);
  return rebuild_snapshot(good, std::vector<RegionRecord>(regions, r), runs, entries);
}

}  // namespace uffdlazy::snap::testing
