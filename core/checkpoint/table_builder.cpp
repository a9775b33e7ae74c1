#include "core/checkpoint/table_builder.h"

#include <cstring>
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::ckpt {

bool TableBuilder::reserve(uint32_t record_size, uint32_t max_records, uint32_t string_bytes) {
  const uint64_t records = sizeof(snap::TableHeader) + uint64_t(record_size) * max_records;
  // Strings are first written after the largest possible record area, then moved down.
  const uint64_t bytes = align_up(records, 4096) + align_up(string_bytes, 4096);
  long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  base_ = reinterpret_cast<uint8_t*>(m);
  strings_ = base_ + align_up(records, 4096);
  record_size_ = record_size;
  max_records_ = max_records;
  string_capacity_ = string_bytes;
  clear();
  return true;
}

void TableBuilder::clear() {
  count_ = 0;
  overflowed_ = false;
  finished_ = false;
  string_used_ = 1;  // offset 0 is the empty string
  if (strings_) strings_[0] = 0;
}

void* TableBuilder::add() {
  if (count_ == max_records_ || finished_) {
    overflowed_ = true;
    return nullptr;
  }
  void* r = record(count_++);
  memset(r, 0, record_size_);
  return r;
}

snap::StringRef TableBuilder::add_string(const char* s, size_t n) {
  if (finished_ || n >= string_capacity_ - string_used_) {
    overflowed_ = true;
    return snap::StringRef{0, 0};
  }
  snap::StringRef ref{string_used_, uint32_t(n)};
  memcpy(strings_ + string_used_, s, n);
  strings_[string_used_ + n] = 0;
  string_used_ += uint32_t(n) + 1;
  return ref;
}

const void* TableBuilder::finish(size_t* length) {
  const uint64_t records_end = sizeof(snap::TableHeader) + uint64_t(count_) * record_size_;
  const uint32_t strings_at = uint32_t(align_up(records_end, 8));
  if (!finished_) {
    memmove(base_ + strings_at, strings_, string_used_);
    finished_ = true;
  }
  snap::TableHeader h{count_, record_size_, strings_at, string_used_};
  memcpy(base_, &h, sizeof h);
  *length = align_up(strings_at + string_used_, 8);
  memset(base_ + strings_at + string_used_, 0, *length - strings_at - string_used_);
  return base_;
}

}  // namespace uffdlazy::ckpt
