// A process image's four sections (process_format.h) over an open SnapshotReader, checked for
// shape: each table's records and strings lie inside its section, every string is
// NUL-terminated, mappings are sorted and do not overlap, each stored region lies inside
// mappings of one laziness, and every address the restorer writes or jumps to before the program
// runs (the shim's resume block, each thread's id address, rseq area, stack and code) lies in
// memory a resume puts in place. Raw system calls only (usable in the shim).
#pragma once

#include <cstdint>

#include "core/snapshot/process_format.h"
#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy::snap {

class ProcessImage {
 public:
  // False when the snapshot is not a process image (no process section).
  static bool is_process_image(const SnapshotReader& r);
  // Checks the sections; on a problem returns kMalformed with `what` saying which.
  ReadStatus open(const SnapshotReader& reader);

  const ProcessRecord& process() const { return *process_; }
  uint32_t thread_count() const { return threads_.count; }
  const ThreadRecord& thread(uint32_t i) const { return *record<ThreadRecord>(threads_, i); }
  uint32_t mapping_count() const { return mappings_.count; }
  const MappingRecord& mapping(uint32_t i) const { return *record<MappingRecord>(mappings_, i); }
  uint32_t descriptor_count() const { return descriptors_.count; }
  const DescriptorRecord& descriptor(uint32_t i) const { return *record<DescriptorRecord>(descriptors_, i); }

  const char* process_string(StringRef s) const { return string(process_table_, s); }
  const char* mapping_string(StringRef s) const { return string(mappings_, s); }
  const char* descriptor_string(StringRef s) const { return string(descriptors_, s); }

  // Index of the mapping holding addr, or -1.
  long mapping_at(uint64_t addr) const;
  // [addr, addr + length) lies in one mapping the restorer puts in place itself (private, not
  // lazy), writable if asked.
  bool in_place(uint64_t addr, uint64_t length, bool writable) const;
  // Whether stored region r is served lazily at resume (its mappings are kMappingLazy).
  bool region_lazy(uint64_t region) const { return lazy_regions_ && (lazy_regions_[region / 64] >> (region % 64)) & 1; }

 private:
  struct Table {
    const uint8_t* base = nullptr;
    uint32_t count = 0;
    uint32_t record_size = 0;
    const char* strings = nullptr;
    uint32_t strings_length = 0;
  };
  static ReadStatus table(SectionView v, uint32_t min_record, Table* out);
  template <class T>
  static const T* record(const Table& t, uint32_t i) {
    return reinterpret_cast<const T*>(t.base + sizeof(TableHeader) + uint64_t(i) * t.record_size);
  }
  static bool string_ok(const Table& t, StringRef s) {
    return uint64_t(s.offset) + s.length < t.strings_length && t.strings[s.offset + s.length] == 0;
  }
  static const char* string(const Table& t, StringRef s) { return string_ok(t, s) ? t.strings + s.offset : ""; }

  Table process_table_, threads_, mappings_, descriptors_;
  const ProcessRecord* process_ = nullptr;
  // One bit per stored region (in an anonymous mapping of its own).
  uint64_t* lazy_regions_ = nullptr;
  uint64_t lazy_bytes_ = 0;

 public:
  ProcessImage() = default;
  ~ProcessImage();
  ProcessImage(const ProcessImage&) = delete;
  ProcessImage& operator=(const ProcessImage&) = delete;
};

}  // namespace uffdlazy::snap
