// Builds one line of text in a fixed buffer and writes it with a single write(2).
//
// The shim reports from places where stdio is off limits (the monitor thread, fork children,
// library destructors while other threads may hold stdio's locks), so it formats by hand.
// One write(2) per line keeps lines from different processes whole.
#pragma once

#include "core/base/errno_names.h"

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

class LineWriter {
 public:
  LineWriter& str(const char* s);
  LineWriter& str(const char* s, size_t n);
  LineWriter& ch(char c);
  LineWriter& u64(uint64_t v);
  LineWriter& i64(int64_t v);
  LineWriter& hex(uint64_t v);  // with a 0x prefix
  // Fixed point: v / 10^decimals with `decimals` digits after the point.
  LineWriter& fixed(uint64_t v, int decimals);
  LineWriter& errno_text(int err);  // "Operation not permitted (EPERM)"

  const char* data() const { return buf_; }
  size_t size() const { return len_; }
  bool truncated() const { return truncated_; }
  // Appends a newline and writes the line to fd; returns false if the write failed.
  bool emit(int fd = 2);
  void clear() { len_ = 0; truncated_ = false; }

 private:
  static constexpr size_t kCapacity = 1024;
  char buf_[kCapacity];
  size_t len_ = 0;
  bool truncated_ = false;
};


}  // namespace uffdlazy
