// Deleted files and directories, memfds and a deleted working directory, made again unnamed:
//   - a file: created under its old name (O_EXCL) and unlinked at once, so /proc/PID/fd shows
//     the same "PATH (deleted)"; if that name is taken again, an O_TMPFILE file in the same
//     directory ("/DIR/#INODE (deleted)"); if the directory is gone too, a memfd named after the
//     file ("/memfd:NAME (deleted)");
//   - a directory (an open one, or the working directory): made under its old name, opened (or
//     entered) and removed; if that name is taken, under the old name with a suffix
//     (".uffdlazy-N"), in its old parent, or else in /tmp;
//   - a FIFO: made under its old name and removed; if taken, an anonymous pipe;
//   - a memfd: memfd_create with its name, its seals added once its mappings are in place.
// Contents are written back extent by extent (holes stay holes), then the size and the mode.
#include <cerrno>
#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/stat.h>

#include "tools/restorer/restorer.h"

namespace restorer {

namespace {

// "PATH.uffdlazy-N" into out.
void suffixed(const char* path, int n, char* out, size_t cap) {
  size_t k = 0;
  for (; path[k] && k + 16 < cap; k++) out[k] = path[k];
  const char* s = ".uffdlazy-";
  for (; *s; s++) out[k++] = *s;
  if (n >= 10) out[k++] = char('0' + n / 10);
  out[k++] = char('0' + n % 10);
  out[k] = 0;
}

// The directory part of path ("/" for "/x"), into out.
void parent_of(const char* path, char* out, size_t cap) {
  size_t n = length(path);
  while (n > 1 && path[n - 1] != '/') n--;
  if (n > 1) n--;  // drop the slash
  if (n >= cap) n = cap - 1;
  memcpy(out, path, n);
  out[n] = 0;
}

const char* base_of(const char* path) {
  const char* b = path;
  for (const char* p = path; *p; p++) {
    if (*p == '/') b = p + 1;
  }
  return b;
}

long unnamed_directory(const char* path, uint32_t mode, bool enter) {
  static char name[4200];
  for (int attempt = -1; attempt < 100; attempt++) {
    if (attempt < 0) {
      memcpy(name, path, length(path) + 1);
    } else if (attempt < 50) {
      suffixed(path, attempt, name, sizeof name);
    } else {
      suffixed("/tmp/deleted-directory", attempt - 50, name, sizeof name);
    }
    const long r = sys::call6(SYS_mkdirat, AT_FDCWD, long(name), mode & 07777);
    if (r < 0) continue;
    long fd = sys::openat(AT_FDCWD, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && enter) {
      const long c = sys::call6(SYS_fchdir, fd);
      if (c < 0) {
        sys::close(int(fd));
        fd = c;
      }
    }
    sys::unlinkat(AT_FDCWD, name, AT_REMOVEDIR);
    return fd;
  }
  return -EEXIST;
}

}  // namespace

long make_unnamed(const char* path, uint32_t mode, const char* what) {
  (void)what;
  const uint32_t type = mode & 0170000;
  if (type == 0040000) return unnamed_directory(path, mode, false);
  if (type == 0010000) {
    if (sys::call6(SYS_mknodat, AT_FDCWD, long(path), 0010000 | 0600, 0) == 0) {
      const long fd = sys::openat(AT_FDCWD, path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
      sys::unlinkat(AT_FDCWD, path, 0);
      if (fd >= 0) sys::call6(SYS_fchmod, fd, mode & 07777);
      return fd;
    }
    int ends[2];
    const long r = sys::call6(SYS_pipe2, long(ends), O_CLOEXEC | O_NONBLOCK);
    if (r < 0) return r;
    sys::close(ends[1]);  // the reader keeps the pipe; descriptions are opened from it
    return ends[0];
  }
  long fd = sys::openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    sys::unlinkat(AT_FDCWD, path, 0);
  } else {
    static char dir[4200];
    parent_of(path, dir, sizeof dir);
    fd = sys::openat(AT_FDCWD, dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
    if (fd < 0) fd = sys::call6(SYS_memfd_create, long(base_of(path)), MFD_CLOEXEC);
  }
  if (fd >= 0) sys::call6(SYS_fchmod, fd, mode & 07777);
  return fd;
}

// The extents of a deleted file or memfd written into fd, then its size.
void fill_file(int fd, const snap::ObjectRecord& o) {
  long r = sys::ftruncate(fd, long(o.file.size));
  const auto* extents = reinterpret_cast<const snap::FileExtent*>(g_image.data_of(o));
  const uint8_t* bytes = g_image.data_of(o) + uint64_t(o.count) * sizeof(snap::FileExtent);
  for (uint32_t k = 0; k < o.count && r >= 0; k++) {
    for (uint64_t done = 0; done < extents[k].length && r >= 0;) {
      r = sys::pwrite(fd, bytes + done, extents[k].length - done, long(extents[k].offset + done));
      if (r == 0) r = -EIO;
      if (r > 0) done += uint64_t(r);
    }
    bytes += (extents[k].length + 7) / 8 * 8;
  }
  if (r < 0) {
    Line l;
    resume_line(l).s("cannot write back the contents of ").s(g_image.object_string(o.path)).s(": ").err(r);
    refuse_objects(l);
  }
}

// The owner it had, when the resumer may give it (root, or the same user).
void give_owner(int fd, const snap::ObjectRecord& o) { sys::call6(SYS_fchown, fd, o.file.uid, o.file.gid); }

void deleted_file_object(uint32_t i, const snap::ObjectRecord& o) {
  const char* path = g_image.object_string(o.path);
  // The deleted working directory, still open: the one made again and entered.
  for (uint32_t k = 0; k < g_image.object_count; k++) {
    const snap::ObjectRecord& c = g_image.object(k);
    if (c.kind == uint32_t(snap::ObjectKind::kDeletedCwd) && c.dev == o.dev && c.ino == o.ino && g_made[k].fd >= 0) {
      g_made[i].fd = stage(sys::call6(SYS_fcntl, g_made[k].fd, F_DUPFD_CLOEXEC, 0), "a deleted directory");
      return;
    }
  }
  const int fd = stage(make_unnamed(path, o.file.mode, "a deleted file"), "a deleted file");
  if ((o.file.mode & 0170000) == 0100000) fill_file(fd, o);
  give_owner(fd, o);
  // The mode again: a change of owner (even to the same one) drops set-user-ID (zdtm file_attr).
  if ((o.file.mode & 0170000) == 0100000) sys::call6(SYS_fchmod, fd, o.file.mode & 07777);
  g_made[i].fd = fd;
}

void memfd_object(uint32_t i, const snap::ObjectRecord& o) {
  const char* name = g_image.object_string(o.path);
  const int fd = stage(sys::call6(SYS_memfd_create, long(name), MFD_CLOEXEC | MFD_ALLOW_SEALING), "a memfd");
  fill_file(fd, o);
  give_owner(fd, o);
  sys::call6(SYS_fchmod, fd, o.file.mode & 07777);  // after the owner, which drops set-user-ID
  g_made[i].fd = fd;
}

void seal_memfds() {
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kMemfd) || !o.file.seals) continue;
    const long r = sys::call6(SYS_fcntl, g_made[i].fd, F_ADD_SEALS, o.file.seals);
    if (r < 0) {
      Line l;
      resume_line(l).s("cannot seal the memfd ").s(g_image.object_string(o.path)).s(" again: ").err(r);
      die(kBroken, l);
    }
  }
}

bool enter_deleted_cwd() {
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kDeletedCwd)) continue;
    const long r = unnamed_directory(g_image.object_string(o.path), o.file.mode ? o.file.mode : 0700, true);
    if (r < 0) {
      Line l;
      resume_line(l).s("cannot make the deleted working directory ").s(g_image.object_string(o.path))
          .s(" again: ").err(r);
      refuse_objects(l);
    }
    g_made[i].fd = stage(r, "the deleted working directory");
    return true;
  }
  return false;
}

}  // namespace restorer
