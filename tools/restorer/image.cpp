// The image, mapped read-only inside the zone, and its sections located. `uffdlazy resume` has
// validated every checksum and cross-reference (SnapshotReader, ProcessImage) just before: this
// only finds things, and refuses what does not even have the right shape.
#include <sys/mman.h>
#include <sys/stat.h>

#include "tools/restorer/restorer.h"

namespace restorer {

Image g_image;

namespace {

[[noreturn]] void bad(const char* what) {
  Line l;
  l.s("uffdlazy: resume ").s(g_options.image).s(": the image is damaged (").s(what).s(")");
  die(kRefused, l);
}

void table(const snap::SectionEntry& e, uint32_t min_record, const uint8_t** records, uint32_t* count,
           uint32_t* stride, const char** strings) {
  if (e.offset + e.length > g_image.size || e.length < sizeof(snap::TableHeader)) bad("section");
  const uint8_t* p = g_image.base + e.offset;
  const auto* h = reinterpret_cast<const snap::TableHeader*>(p);
  if (h->record_size < min_record || sizeof(snap::TableHeader) + uint64_t(h->count) * h->record_size > e.length ||
      uint64_t(h->strings_offset) + h->strings_length > e.length) {
    bad("table");
  }
  *records = p + sizeof(snap::TableHeader);
  *count = h->count;
  *stride = h->record_size;
  if (strings) *strings = reinterpret_cast<const char*>(p + h->strings_offset);
}

}  // namespace

namespace {
const snap::ProcessSettings kNoProcessSettings = {};
const snap::ThreadSettings kNoThreadSettings = {};
}  // namespace

const snap::ProcessSettings& Image::settings() const {
  return process_stride >= sizeof(snap::ProcessRecord) ? process->settings : kNoProcessSettings;
}

const snap::ThreadSettings& Image::thread_settings(const snap::ThreadRecord& t) const {
  return thread_stride >= sizeof(snap::ThreadRecord) ? t.settings : kNoThreadSettings;
}

long Image::mapping_at(uint64_t addr) const {
  long lo = 0, hi = long(mapping_count) - 1;
  while (lo <= hi) {
    const long mid = (lo + hi) / 2;
    const snap::MappingRecord& m = mapping(uint32_t(mid));
    if (addr < m.start) hi = mid - 1;
    else if (addr >= m.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

void map_image() {
  struct stat st;
  if (sys::fstat(g_options.image_fd, &st) < 0 || st.st_size < long(sizeof(snap::FileHeader))) bad("size");
  g_image.size = uint64_t(st.st_size);
  long m = sys::mmap(reinterpret_cast<void*>(kImageAt), g_image.size, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE,
                     g_options.image_fd, 0);
  if (m != long(kImageAt)) {
    Line l;
    l.s("uffdlazy: resume ").s(g_options.image).s(": cannot map the image: ").err(m);
    die(kRefused, l);
  }
  g_image.base = reinterpret_cast<const uint8_t*>(m);
  g_image.header = reinterpret_cast<const snap::FileHeader*>(g_image.base);
  const snap::FileHeader& h = *g_image.header;
  if (memcmp(h.magic, snap::kMagic, 8) != 0 || h.version_major != snap::kVersionMajor) bad("header");
  if (h.section_table_offset + uint64_t(h.section_count) * h.section_entry_size > g_image.size) bad("section table");
  for (uint32_t i = 0; i < h.section_count; i++) {
    const auto& e = *reinterpret_cast<const snap::SectionEntry*>(g_image.base + h.section_table_offset +
                                                                 uint64_t(i) * h.section_entry_size);
    if (e.offset + e.length > g_image.size) bad("section");
    const uint8_t* p = g_image.base + e.offset;
    switch (e.type) {
      case uint32_t(snap::SectionType::kRegions):
        g_image.regions = reinterpret_cast<const snap::RegionRecord*>(p);
        g_image.region_count = e.length / sizeof(snap::RegionRecord);
        break;
      case uint32_t(snap::SectionType::kPageRuns):
        g_image.runs = reinterpret_cast<const snap::RunRecord*>(p);
        break;
      case uint32_t(snap::SectionType::kPageEntries):
        g_image.entries = reinterpret_cast<const snap::PageEntry*>(p);
        break;
      case uint32_t(snap::SectionType::kPacked):
        g_image.packed = p;
        g_image.packed_length = e.length;
        break;
      case uint32_t(snap::ProcessSection::kProcess): {
        const uint8_t* rec;
        uint32_t count, stride;
        table(e, snap::kProcessRecordSize10, &rec, &count, &stride, &g_image.process_strings);
        if (count != 1) bad("process record");
        g_image.process_stride = stride;
        g_image.process = reinterpret_cast<const snap::ProcessRecord*>(rec);
        break;
      }
      case uint32_t(snap::ProcessSection::kThreads):
        table(e, snap::kThreadRecordSize10, &g_image.threads, &g_image.thread_count, &g_image.thread_stride, nullptr);
        break;
      case uint32_t(snap::ProcessSection::kMappings):
        table(e, sizeof(snap::MappingRecord), &g_image.mappings, &g_image.mapping_count, &g_image.mapping_stride,
              &g_image.mapping_strings);
        break;
      case uint32_t(snap::ProcessSection::kDescriptors):
        table(e, snap::kDescriptorRecordSize10, &g_image.descriptors, &g_image.descriptor_count,
              &g_image.descriptor_stride, &g_image.descriptor_strings);
        break;
      case uint32_t(snap::ProcessSection::kObjects):
        table(e, sizeof(snap::ObjectRecord), &g_image.objects, &g_image.object_count, &g_image.object_stride,
              &g_image.object_strings);
        break;
      case uint32_t(snap::ProcessSection::kObjectData):
        g_image.object_data = p;
        g_image.object_data_length = e.length;
        break;
      default:
        break;
    }
  }
  if (!g_image.process || !g_image.threads || !g_image.mappings || !g_image.descriptors || !g_image.regions ||
      !g_image.runs || !g_image.entries) {
    bad("not a process image");
  }
}

}  // namespace restorer
