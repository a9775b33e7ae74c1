#include "core/checkpoint/descriptor_capture.h"

#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/base/decimal.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

constinit char g_target[4200];
constinit char g_info[4096];

bool harmless_device(const char* path) {
  static const char* const kDevices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
  for (const char* d : kDevices) {
    if (!strcmp(path, d)) return true;
  }
  return false;
}

// "pos:\t0\nflags:\t0100002\n..." -> position and flags.
void parse_fdinfo(const char* text, uint64_t* pos, uint32_t* flags) {
  for (const char* p = text; *p;) {
    const char* line_end = p;
    while (*line_end && *line_end != '\n') line_end++;
    if (starts_with(p, size_t(line_end - p), "pos:")) {
      const char* q = p + 4;
      while (*q == ' ' || *q == '\t') q++;
      *pos = parse_number(&q, line_end);
    } else if (starts_with(p, size_t(line_end - p), "flags:")) {
      const char* q = p + 6;
      while (*q == ' ' || *q == '\t') q++;
      *flags = uint32_t(parse_number(&q, line_end, 8));
    }
    p = *line_end ? line_end + 1 : line_end;
  }
}

}  // namespace

bool capture_descriptors(const ShimDescriptors& shim, TableBuilder* table, LineWriter* why) {
  long dir = sys::openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    why->str("cannot list the process's descriptors");
    return false;
  }
  bool ok = true;
  alignas(8) char buf[4096];
  for (;;) {
    long n = sys::call6(SYS_getdents64, dir, long(buf), sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n && ok;) {
      uint16_t reclen;
      memcpy(&reclen, buf + off + 16, 2);
      const char* name = buf + off + 19;
      off += reclen;
      if (*name < '0' || *name > '9') continue;
      const char* q = name;
      const int fd = int(parse_number(&q, name + 16));
      if (fd == int(dir) || fd <= 2) continue;
      snap::DescriptorRecord* d = table->add_record<snap::DescriptorRecord>();
      if (!d) {
        why->str("too many descriptors");
        ok = false;
        break;
      }
      d->fd = fd;
      char path[64] = "/proc/self/fd/";
      format_u64(path + 14, uint64_t(fd));
      long len = read_link(path, g_target, sizeof g_target);
      char info_path[64] = "/proc/self/fdinfo/";
      format_u64(info_path + 18, uint64_t(fd));
      uint64_t pos = 0;
      uint32_t flags = 0;
      if (read_small_file(info_path, g_info, sizeof g_info) > 0) parse_fdinfo(g_info, &pos, &flags);
      d->position = pos;
      d->cloexec = (flags & O_CLOEXEC) ? 1 : 0;
      d->open_flags = flags & ~uint32_t(O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
      if (fd == shim.uffd) {
        d->kind = uint32_t(snap::DescriptorKind::kShimUffd);
        continue;
      }
      if (fd == shim.stderr_copy) {
        d->kind = uint32_t(snap::DescriptorKind::kShimStderr);
        continue;
      }
      struct stat st;
      if (len <= 0 || sys::fstat(fd, &st) < 0) {
        why->str("descriptor ").i64(fd).str(" cannot be examined");
        ok = false;
        break;
      }
      const bool deleted = len > 10 && !strcmp(g_target + len - 10, " (deleted)");
      const bool named = g_target[0] == '/';
      const bool reg = S_ISREG(st.st_mode), directory = S_ISDIR(st.st_mode);
      if (!named || deleted || !(reg || directory || (S_ISCHR(st.st_mode) && harmless_device(g_target)))) {
        why->str("descriptor ").i64(fd).str(" is ");
        if (deleted) why->str("the deleted file ").str(g_target, size_t(len) - 10);
        else if (!strncmp(g_target, "pipe:", 5)) why->str("a pipe");
        else if (!strncmp(g_target, "socket:", 7)) why->str("a socket");
        else if (!strncmp(g_target, "anon_inode:", 11)) why->str("an ").str(g_target + 11);
        else why->str(g_target);
        why->str(", which a resume cannot reopen");
        ok = false;
        break;
      }
      d->kind = uint32_t(snap::DescriptorKind::kFile);
      d->dev = uint64_t(st.st_dev);
      d->ino = uint64_t(st.st_ino);
      d->mode = uint32_t(st.st_mode);
      d->path = table->add_string(g_target, size_t(len));
    }
    if (!ok) break;
  }
  sys::close(int(dir));
  if (ok && shim.uffd >= 0) {
    bool found = false;
    for (uint32_t i = 0; i < table->count(); i++) {
      const auto* d = static_cast<const snap::DescriptorRecord*>(table->record(i));
      found |= d->kind == uint32_t(snap::DescriptorKind::kShimUffd);
    }
    if (!found) {
      why->str("the program closed the shim's userfaultfd (descriptor ").i64(shim.uffd).str(")");
      ok = false;
    }
  }
  if (ok && table->overflowed()) {
    why->str("too many descriptors");
    ok = false;
  }
  return ok;
}

}  // namespace uffdlazy::ckpt
