#include "core/base/proc_maps.h"

#include <cerrno>
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

bool ProcMaps::open_maps() {
  long fd = sys::openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  fd_ = int(fd);
  return true;
}

long ProcMaps::fill_at(size_t have) {
  long r;
  do {
    r = sys::read(fd_, buf_ + have, kBufSize - have);
  } while (r == -EINTR);
  return r;
}

void ProcMaps::close_maps() {
  if (fd_ >= 0) sys::close(fd_);
  fd_ = -1;
}

// "start-end perms offset dev inode    path"
bool ProcMaps::parse(const char* line, size_t n, MapsEntry* out) {
  const char* p = line;
  const char* end = line + n;
  uint64_t start, stop, offset, inode;
  if (!hex(p, end, &start) || p >= end || *p != '-') return false;
  p++;
  if (!hex(p, end, &stop) || p >= end || *p != ' ') return false;
  p++;
  if (end - p < 5) return false;
  for (int i = 0; i < 4; i++) out->perms[i] = p[i];
  out->perms[4] = 0;
  p = skip_field(p, end);
  if (!hex(p, end, &offset)) return false;
  p = skip_field(p, end);  // to dev
  p = skip_field(p, end);  // to inode
  inode = 0;
  while (p < end && *p >= '0' && *p <= '9') inode = inode * 10 + uint64_t(*p++ - '0');
  while (p < end && *p == ' ') p++;
  out->start = uintptr_t(start);
  out->end = uintptr_t(stop);
  out->offset = offset;
  out->inode = inode;
  out->path = p;
  out->path_length = size_t(end - p);
  return true;
}

}  // namespace uffdlazy
