#include "core/snapshot/index_digest.h"

#include <cstddef>
#include <cstring>

#include "core/snapshot/format.h"

namespace uffdlazy::snap {

void IndexDigest::header(const void* header, uint32_t header_size) {
  const uint8_t* p = static_cast<const uint8_t*>(header);
  static constexpr uint8_t kZeros[kSha256Size] = {};
  constexpr size_t kSum = offsetof(FileHeader, header_checksum), kDigest = offsetof(FileHeader, index_digest);
  if (header_size < kDigest + kSha256Size) {
    sha_.update(p, header_size);  // not a 1.1 header: nothing to leave out (the reader refuses it anyway)
    return;
  }
  sha_.update(p, kSum);
  sha_.update(kZeros, 8);
  sha_.update(p + kSum + 8, kDigest - kSum - 8);
  sha_.update(kZeros, kSha256Size);
  sha_.update(p + kDigest + kSha256Size, header_size - kDigest - kSha256Size);
}

bool compute_index_digest(const uint8_t* file, uint64_t size, uint8_t out[kSha256Size]) {
  if (size < sizeof(FileHeader)) return false;
  FileHeader h;
  memcpy(&h, file, sizeof h);
  const uint64_t table_bytes = uint64_t(h.section_count) * h.section_entry_size;
  if (h.header_size > size || h.section_entry_size < sizeof(SectionEntry) || h.section_table_offset > size ||
      table_bytes > size - h.section_table_offset) {
    return false;
  }
  IndexDigest d;
  d.header(file, h.header_size);
  const uint8_t* table = file + h.section_table_offset;
  d.add(table, table_bytes);
  for (uint32_t i = 0; i < h.section_count; i++) {
    SectionEntry e;
    memcpy(&e, table + uint64_t(i) * h.section_entry_size, sizeof e);
    if (e.type == uint32_t(SectionType::kData)) continue;
    if (e.offset > size || e.length > size - e.offset) return false;
    d.add(file + e.offset, e.length);
  }
  d.finish(out);
  return true;
}

bool has_index_digest(const uint8_t digest[kSha256Size]) {
  for (size_t i = 0; i < kSha256Size; i++) {
    if (digest[i]) return true;
  }
  return false;
}

}  // namespace uffdlazy::snap
