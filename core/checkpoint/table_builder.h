// Builds one table section of a process image (process_format.h: header, records, strings) in a
// reservation of its own, mapped aside at once and populated only as it is written. Records and
// strings grow independently; finish() lays them out end to end.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/snapshot/process_format.h"

namespace uffdlazy::ckpt {

class TableBuilder {
 public:
  // Reserves room for max_records records of record_size bytes and string_bytes of strings.
  bool reserve(uint32_t record_size, uint32_t max_records, uint32_t string_bytes);
  void clear();
  // A zeroed record, or nullptr when the table is full (overflowed() then says so).
  void* add();
  template <class T>
  T* add_record() {
    return static_cast<T*>(add());
  }
  // Copies s (n bytes) into the string area; {0, 0} (the empty string) when it is full.
  snap::StringRef add_string(const char* s, size_t n);
  bool overflowed() const { return overflowed_; }
  uint32_t count() const { return count_; }
  void* record(uint32_t i) const { return base_ + sizeof(snap::TableHeader) + uint64_t(i) * record_size_; }
  // A string added earlier (before finish()).
  const char* string_at(snap::StringRef s) const { return reinterpret_cast<const char*>(strings_ + s.offset); }
  // The section's bytes (valid until the next add or clear).
  const void* finish(size_t* length);

 private:
  uint8_t* base_ = nullptr;  // header + records, then (from strings_at_) strings
  uint8_t* strings_ = nullptr;
  uint32_t record_size_ = 0;
  uint32_t max_records_ = 0;
  uint32_t count_ = 0;
  uint32_t string_capacity_ = 0;
  uint32_t string_used_ = 0;
  bool overflowed_ = false;
  bool finished_ = false;
};

}  // namespace uffdlazy::ckpt
