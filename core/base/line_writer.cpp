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

const char* errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case EDQUOT: return "EDQUOT";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    default: return "E?";
  }
}

const char* errno_message(int err) {
  switch (err) {
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case ESRCH: return "No such process";
    case EINTR: return "Interrupted system call";
    case EIO: return "Input/output error";
    case EBADF: return "Bad file descriptor";
    case EAGAIN: return "Resource temporarily unavailable";
    case ENOMEM: return "Cannot allocate memory";
    case EACCES: return "Permission denied";
    case EFAULT: return "Bad address";
    case EBUSY: return "Device or resource busy";
    case EEXIST: return "File exists";
    case ENODEV: return "No such device";
    case EINVAL: return "Invalid argument";
    case ENFILE: return "Too many open files in system";
    case EMFILE: return "Too many open files";
    case ENOTTY: return "Inappropriate ioctl for device";
    case EFBIG: return "File too large";
    case ENOSPC: return "No space left on device";
    case EROFS: return "Read-only file system";
    case ENOSYS: return "Function not implemented";
    case EDQUOT: return "Disk quota exceeded";
    case ENAMETOOLONG: return "File name too long";
    case EISDIR: return "Is a directory";
    case ENOTDIR: return "Not a directory";
    default: return "Unknown error";
  }
}

}  // namespace uffdlazy
