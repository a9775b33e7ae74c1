#include "core/base/line_writer.h"

#include <cerrno>

#include "core/base/decimal.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

LineWriter& LineWriter::str(const char* s) {
  if (!s) return str("(null)");
  while (*s) ch(*s++);
  return *this;
}

LineWriter& LineWriter::str(const char* s, size_t n) {
  for (size_t i = 0; i < n; i++) ch(s[i]);
  return *this;
}

LineWriter& LineWriter::ch(char c) {
  // One byte is kept for the newline emit() appends.
  if (len_ + 1 < kCapacity) {
    buf_[len_++] = c;
  } else {
    truncated_ = true;
  }
  return *this;
}

LineWriter& LineWriter::u64(uint64_t v) {
  char digits[20];
  return str(digits, format_u64(digits, v));
}

LineWriter& LineWriter::i64(int64_t v) {
  if (v < 0) {
    ch('-');
    return u64(uint64_t(0) - uint64_t(v));
  }
  return u64(uint64_t(v));
}

LineWriter& LineWriter::hex(uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v);
  str("0x");
  while (n) ch(tmp[--n]);
  return *this;
}

LineWriter& LineWriter::fixed(uint64_t v, int decimals) {
  uint64_t scale = 1;
  for (int i = 0; i < decimals; i++) scale *= 10;
  u64(v / scale);
  if (decimals > 0) {
    ch('.');
    uint64_t frac = v % scale;
    for (uint64_t s = scale / 10; s; s /= 10) {
      ch(char('0' + (frac / s) % 10));
    }
  }
  return *this;
}

LineWriter& LineWriter::errno_text(int err) {
  return str(errno_message(err)).str(" (").str(errno_name(err)).ch(')');
}

bool LineWriter::emit(int fd) {
  buf_[len_] = '\n';
  long r = sys::write(fd, buf_, len_ + 1);
  return r == long(len_ + 1);
}

}  // namespace uffdlazy
