#include "core/checkpoint/proc_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>

#include "core/base/dir_entries.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy::ckpt {

long read_small_file(const char* path, char* buf, size_t cap) {
  long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fd;
  size_t have = 0;
  while (have + 1 < cap) {
    long r = sys::read(int(fd), buf + have, cap - 1 - have);
    if (r == -EINTR) continue;
    if (r < 0) {
      sys::close(int(fd));
      return r;
    }
    if (r == 0) break;
    have += size_t(r);
  }
  sys::close(int(fd));
  buf[have] = 0;
  return long(have);
}

long read_link(const char* path, char* buf, size_t cap) {
  long r = sys::call6(SYS_readlinkat, AT_FDCWD, long(path), long(buf), long(cap - 1));
  if (r < 0) return r;
  buf[r] = 0;
  return r;
}

bool LineReader::open(const char* path) {
  long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  fd_ = int(fd);
  return true;
}

long LineReader::fill(size_t have) {
  long r;
  do {
    r = sys::read(fd_, buf_ + have, kBuf - have);
  } while (r == -EINTR);
  return r;
}

void LineReader::close() {
  if (fd_ >= 0) sys::close(fd_);
  fd_ = -1;
}

const char* line_value(const char* text, const char* key) {
  const size_t k = __builtin_strlen(key);
  for (const char* p = text; *p;) {
    if (!__builtin_strncmp(p, key, k)) {
      p += k;
      while (*p == ' ' || *p == '\t') p++;
      return p;
    }
    while (*p && *p != '\n') p++;
    if (*p) p++;
  }
  return nullptr;
}

void append_path(LineWriter* w, const char* s, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      w->str("\\n");
    } else if (c < 0x20 || c == 0x7f) {
      w->str("\\x").ch(kHex[c >> 4]).ch(kHex[c & 15]);
    } else {
      w->ch(char(c));
    }
  }
}

bool starts_with(const char* s, size_t n, const char* prefix) {
  size_t i = 0;
  for (; prefix[i]; i++) {
    if (i >= n || s[i] != prefix[i]) return false;
  }
  return true;
}

uint64_t parse_number(const char** p, const char* end, int base) {
  uint64_t v = 0;
  const char* s = *p;
  for (; s < end; s++) {
    const char c = *s;
    uint64_t d;
    if (c >= '0' && c <= '9') d = uint64_t(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') d = uint64_t(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F') d = uint64_t(c - 'A' + 10);
    else break;
    v = v * uint64_t(base) + d;
  }
  *p = s;
  return v;
}

uint32_t list_child_pids(int32_t* out, uint32_t cap, bool* overflow) {
  uint32_t count = 0;
  const long dir = sys::openat(AT_FDCWD, "/proc/self/task", O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 0;
  for_each_dir_entry(int(dir), [&](const char* name) {
    if (*name < '0' || *name > '9') return;
    char path[64] = "/proc/self/task/";
    size_t len = strlen(path);
    for (const char* q = name; *q && len < 40; q++) path[len++] = *q;
    memcpy(path + len, "/children", 10);
    static char kids[4096];
    const long r = read_small_file(path, kids, sizeof kids);
    for (const char* p = kids; r > 0 && p < kids + r;) {
      while (p < kids + r && *p == ' ') p++;
      if (p >= kids + r) break;
      const int32_t pid = int32_t(parse_number(&p, kids + r));
      if (count < cap) {
        out[count++] = pid;
      } else {
        *overflow = true;
      }
      while (p < kids + r && *p != ' ') p++;
    }
  });
  sys::close(int(dir));
  return count;
}


}  // namespace uffdlazy::ckpt
