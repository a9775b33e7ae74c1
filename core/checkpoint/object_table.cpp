#include "core/checkpoint/object_table.h"

#include <sys/mman.h>

#include "core/base/align.h"
#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::ckpt {

bool ObjectTable::reserve() {
  if (!records_.reserve(sizeof(snap::ObjectRecord), 1u << 16, 8u << 20)) return false;
  long m = mmap_aside(kMaxObjectData, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  data_ = reinterpret_cast<uint8_t*>(m);
  return true;
}

void ObjectTable::clear() {
  records_.clear();
  data_used_ = 0;
  data_overflowed_ = false;
}

snap::ObjectRecord* ObjectTable::add(snap::ObjectKind kind, uint64_t ino) {
  auto* o = records_.add_record<snap::ObjectRecord>();
  if (!o) return nullptr;
  o->kind = uint32_t(kind);
  o->ino = ino;
  o->data_offset = data_used_;
  return o;
}

long ObjectTable::find(snap::ObjectKind kind, uint64_t ino) const {
  for (uint32_t i = 0; i < count(); i++) {
    if (at(i)->kind == uint32_t(kind) && at(i)->ino == ino) return long(i);
  }
  return -1;
}

uint8_t* ObjectTable::grow_data(snap::ObjectRecord* o, uint64_t n) {
  if (o->data_length == 0) {
    data_used_ = align_up(data_used_, 8);  // each object's data starts 8-aligned
    o->data_offset = data_used_;
  }
  if (o->data_offset + o->data_length != data_used_ || n > kMaxObjectData - data_used_) {
    data_overflowed_ = true;
    return nullptr;
  }
  uint8_t* p = data_ + data_used_;
  data_used_ += n;
  o->data_length += n;
  return p;
}

void ObjectTable::shrink_data(snap::ObjectRecord* o, uint64_t n) {
  if (n > o->data_length) n = o->data_length;
  o->data_length -= n;
  data_used_ -= n;
}

void ObjectTable::data_range(uint64_t* start, uint64_t* end) const {
  *start = reinterpret_cast<uint64_t>(data_);
  *end = *start + kMaxObjectData;
}

void ObjectTable::release_data() {
  if (data_used_) sys::madvise(data_, align_up(data_used_, 4096), MADV_DONTNEED);
}

}  // namespace uffdlazy::ckpt
