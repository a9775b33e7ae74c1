// The objects of a checkpoint (process_format.h ObjectRecord: pipes, sockets, eventfds, deleted
// files, shared memory, timers) and the bytes they hold (the object data section), built by the
// checkpoint thread while every program thread is stopped.
//
// The bytes are copied at that instant (a pipe's buffer, a deleted file's contents), so the
// program may go on at once in continue mode. They live in a reservation of their own, which the
// image maps again but never stores as memory (object_data_range), and which is given back
// (MADV_DONTNEED) once the writer has its copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/checkpoint/table_builder.h"
#include "core/snapshot/process_format.h"

namespace uffdlazy::ckpt {

// All the bytes of one checkpoint's objects together may not exceed this (a larger deleted file
// or memfd is refused).
inline constexpr uint64_t kMaxObjectData = 1ull << 30;

class ObjectTable {
 public:
  bool reserve();
  void clear();
  // A zeroed record (its index is count() - 1 afterwards), or nullptr when the table is full.
  snap::ObjectRecord* add(snap::ObjectKind kind, uint64_t ino);
  uint32_t count() const { return records_.count(); }
  snap::ObjectRecord* at(uint32_t i) const { return static_cast<snap::ObjectRecord*>(records_.record(i)); }
  // Index of the first object of this kind and inode, or -1.
  long find(snap::ObjectKind kind, uint64_t ino) const;
  snap::StringRef add_string(const char* s, size_t n) { return records_.add_string(s, n); }
  const char* string_at(snap::StringRef s) const { return records_.string_at(s); }

  // Room for n more bytes of object o's data, which must be the last object to have any (its data
  // grows at the end); nullptr when the area is full.
  uint8_t* grow_data(snap::ObjectRecord* o, uint64_t n);
  // Gives back the last n bytes grown (an object that turned out to hold less).
  void shrink_data(snap::ObjectRecord* o, uint64_t n);
  bool overflowed() const { return records_.overflowed() || data_overflowed_; }
  uint64_t data_bytes() const { return data_used_; }

  const void* finish_records(size_t* length) { return records_.finish(length); }
  const void* data() const { return data_; }
  // [start, end) of the data reservation (mapped again at resume, never stored).
  void data_range(uint64_t* start, uint64_t* end) const;
  // After the writer has its copy: the pages go back to the system.
  void release_data();

 private:
  TableBuilder records_;
  uint8_t* data_ = nullptr;
  uint64_t data_used_ = 0;
  bool data_overflowed_ = false;
};

}  // namespace uffdlazy::ckpt
