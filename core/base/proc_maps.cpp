#include "core/base/proc_maps.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

bool hex(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* s = p;
  for (; p < end; p++) {
    const char c = *p;
    uint64_t d;
    if (c >= '0' && c <= '9') d = uint64_t(c - '0');
    else if (c >= 'a' && c <= 'f') d = uint64_t(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = uint64_t(c - 'A' + 10);
    else break;
    v = v << 4 | d;
  }
  *out = v;
  return p > s;
}

const char* skip_field(const char* p, const char* end) {
  while (p < end && *p != ' ') p++;
  while (p < end && *p == ' ') p++;
  return p;
}

}  // namespace

bool MapsEntry::path_is(const char* s) const {
  const size_t n = strlen(s);
  return n == path_length && !memcmp(path, s, n);
}

bool MapsEntry::path_starts_with(const char* s) const {
  const size_t n = strlen(s);
  return n <= path_length && !memcmp(path, s, n);
}

bool MapsEntry::private_anonymous() const {
  if (shared || inode != 0) return false;
  return path_length == 0 || path_is("[heap]") || path_starts_with("[anon:");
}

// "start-end perms offset dev inode    path"
bool parse_maps_line(const char* line, size_t n, MapsEntry* out) {
  const char* p = line;
  const char* end = line + n;
  uint64_t start, stop, offset, inode;
  if (!hex(p, end, &start) || p >= end || *p != '-') return false;
  p++;
  if (!hex(p, end, &stop) || p >= end || *p != ' ') return false;
  p++;
  if (end - p < 5 || p[4] != ' ') return false;
  MapsEntry e;
  e.read = p[0] == 'r';
  e.write = p[1] == 'w';
  e.exec = p[2] == 'x';
  e.shared = p[3] == 's';
  p = skip_field(p, end);
  if (!hex(p, end, &offset)) return false;
  p = skip_field(p, end);  // to dev
  p = skip_field(p, end);  // to inode
  const char* inode_at = p;
  if (!hex(p, end, &inode)) return false;
  // The inode is decimal: parse it again as such.
  inode = 0;
  for (const char* q = inode_at; q < p; q++) inode = inode * 10 + uint64_t(*q - '0');
  while (p < end && *p == ' ') p++;
  e.start = uintptr_t(start);
  e.end = uintptr_t(stop);
  e.offset = offset;
  e.inode = inode;
  e.path = p;
  e.path_length = size_t(end - p);
  *out = e;
  return true;
}

int for_each_line(const char* path, char* buf, size_t cap, void (*fn)(const char*, size_t, void*), void* ctx) {
  const long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return int(fd);
  size_t have = 0;
  bool skipping = false;  // inside a line longer than the buffer
  for (;;) {
    const long r = sys::read(int(fd), buf + have, cap - have);
    if (r == -EINTR) continue;
    if (r <= 0) break;
    have += size_t(r);
    size_t line = 0;
    for (size_t i = 0; i < have; i++) {
      if (buf[i] != '\n') continue;
      if (!skipping) fn(buf + line, i - line, ctx);
      skipping = false;
      line = i + 1;
    }
    if (line == 0 && have == cap) {  // no newline in a full buffer
      skipping = true;
      have = 0;
      continue;
    }
    memmove(buf, buf + line, have - line);
    have -= line;
  }
  if (have && !skipping) fn(buf, have, ctx);
  sys::close(int(fd));
  return 0;
}

}  // namespace uffdlazy
