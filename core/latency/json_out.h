// Streams JSON text to a file descriptor through a fixed buffer: no heap, no stdio, no floats.
//
// The caller drives the structure (begin/end object/array, key); commas are placed here. The
// first write error is kept and every later call is a no-op, so writers check once at the end.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

class JsonOut {
 public:
  explicit JsonOut(int fd) : fd_(fd) {}

  JsonOut& begin_object();
  JsonOut& end_object();
  JsonOut& begin_array();
  JsonOut& end_array();
  JsonOut& key(const char* k);  // the value call that follows belongs to it

  JsonOut& u64(uint64_t v);
  JsonOut& str(const char* s);  // escaped; bytes >= 0x80 pass through unchanged
  JsonOut& boolean(bool b);
  JsonOut& null();
  JsonOut& raw_number(const char* literal);  // a constant like "0.015625"

  JsonOut& field(const char* k, uint64_t v) { return key(k).u64(v); }
  JsonOut& field(const char* k, const char* s) { return key(k).str(s); }

  // Writes what is buffered (plus a final newline). 0 or the first -errno seen.
  int finish();
  int error() const { return err_; }

 private:
  void value_prefix();
  void put(char c);
  void put(const char* s);
  void flush();

  static constexpr size_t kBuffer = 8192;
  static constexpr int kMaxDepth = 32;
  int fd_;
  int err_ = 0;
  size_t len_ = 0;
  int depth_ = 0;
  bool after_key_ = false;
  bool has_items_[kMaxDepth] = {};
  char buf_[kBuffer];
};

}  // namespace uffdlazy
