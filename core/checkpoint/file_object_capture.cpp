// Deleted files and memfds: their contents go into the image (the data that lies in them, hole by
// hole, as SEEK_DATA/SEEK_HOLE find it), to be made again unnamed at resume. Read through a
// descriptor of our own, so the program's offset is left alone. A deleted directory has no
// contents; other deleted files (devices, sockets) are refused.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/base/align.h"
#include "core/base/decimal.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/object_capture.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxExtents = 4096;
constinit snap::FileExtent g_extents[kMaxExtents] = {};

long find(snap::ObjectKind kind, const struct stat& st, ObjectTable* objects) {
  for (uint32_t i = 0; i < objects->count(); i++) {
    const snap::ObjectRecord* o = objects->at(i);
    if (o->kind == uint32_t(kind) && o->ino == uint64_t(st.st_ino) && o->dev == uint64_t(st.st_dev)) return long(i);
  }
  return -1;
}

// The file's data extents and their bytes, read through `fd` (ours).
bool copy_contents(int fd, snap::ObjectRecord* o, ObjectTable* objects, LineWriter* why, const OpenFile& f) {
  const uint64_t size = o->file.size;
  uint32_t n = 0;
  uint64_t bytes = 0;
  for (uint64_t at = 0; at < size;) {
    const long data = sys::call6(SYS_lseek, fd, long(at), SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole is left
    long hole = sys::call6(SYS_lseek, fd, data, SEEK_HOLE);
    if (hole < 0 || uint64_t(hole) > size) hole = long(size);
    if (n == kMaxExtents) {
      about(why, f).str("has more than ").u64(kMaxExtents).str(" separate pieces of data");
      return false;
    }
    g_extents[n++] = snap::FileExtent{uint64_t(data), uint64_t(hole - data)};
    bytes += align_up(uint64_t(hole - data), 8);
    at = uint64_t(hole);
  }
  uint8_t* dst = objects->grow_data(o, uint64_t(n) * sizeof(snap::FileExtent) + bytes);
  if (!dst) {
    about(why, f).str("holds ").u64(bytes).str(" bytes, more than a checkpoint keeps (")
        .u64(kMaxObjectData >> 20).str(" MiB for all deleted files and memfds together)");
    return false;
  }
  memcpy(dst, g_extents, n * sizeof(snap::FileExtent));
  o->count = n;
  uint8_t* p = dst + n * sizeof(snap::FileExtent);
  for (uint32_t i = 0; i < n; i++) {
    for (uint64_t got = 0; got < g_extents[i].length;) {
      const long r = sys::pread(fd, p + got, size_t(g_extents[i].length - got), long(g_extents[i].offset + got));
      if (r <= 0) {
        about(why, f).str("cannot be read back: ").errno_text(r < 0 ? int(-r) : EIO);
        return false;
      }
      got += uint64_t(r);
    }
    p += align_up(g_extents[i].length, 8);
  }
  return true;
}

// Opens the file behind the program's descriptor once more, for reading.
long reader_for(const OpenFile& f) {
  char path[64] = "/proc/self/fd/";
  format_u64(path + 14, uint64_t(f.fd));
  return sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
}

long add_file(const OpenFile& f, snap::ObjectKind kind, ObjectTable* objects, LineWriter* why, snap::ObjectRecord** out) {
  snap::ObjectRecord* o = objects->add(kind, uint64_t(f.st.st_ino));
  if (!o) {
    why->str("too many objects");
    return -1;
  }
  o->dev = uint64_t(f.st.st_dev);
  o->file.mode = uint32_t(f.st.st_mode);
  o->file.uid = uint32_t(f.st.st_uid);
  o->file.gid = uint32_t(f.st.st_gid);
  o->file.size = S_ISREG(f.st.st_mode) ? uint64_t(f.st.st_size) : 0;
  *out = o;
  return long(objects->count() - 1);
}

bool fill(const OpenFile& f, snap::ObjectRecord* o, ObjectTable* objects, LineWriter* why) {
  const long r = reader_for(f);
  if (r < 0) {
    about(why, f).str("cannot be read back: ").errno_text(int(-r));
    return false;
  }
  const bool ok = copy_contents(int(r), o, objects, why, f);
  sys::close(int(r));
  return ok;
}

}  // namespace

long capture_deleted_file(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  const long known = find(snap::ObjectKind::kDeletedFile, f.st, objects);
  if (known >= 0) return known;
  if (!S_ISREG(f.st.st_mode) && !S_ISDIR(f.st.st_mode)) {
    about(why, f).str("is a deleted special file, which a resume cannot make again");
    return -1;
  }
  if (f.st.st_nlink > 0 && S_ISREG(f.st.st_mode)) {
    about(why, f).str("was deleted under this name but is still linked under another; a resume could not find it");
    return -1;
  }
  snap::ObjectRecord* o = nullptr;
  const long index = add_file(f, snap::ObjectKind::kDeletedFile, objects, why, &o);
  if (index < 0) return -1;
  o->flags |= snap::kObjectDeleted;
  o->path = objects->add_string(f.link, f.link_length - 10);  // without " (deleted)"
  if (S_ISREG(f.st.st_mode) && !fill(f, o, objects, why)) return -1;
  return index;
}

long capture_memfd(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  const long known = find(snap::ObjectKind::kMemfd, f.st, objects);
  if (known >= 0) return known;
  struct statfs fs;
  if (sys::call6(SYS_fstatfs, f.fd, long(&fs)) == 0 && fs.f_type == HUGETLBFS_MAGIC) {
    about(why, f).str("is a hugetlb memfd, which a resume cannot make again");
    return -1;
  }
  snap::ObjectRecord* o = nullptr;
  const long index = add_file(f, snap::ObjectKind::kMemfd, objects, why, &o);
  if (index < 0) return -1;
  // "/memfd:NAME (deleted)": the name as memfd_create got it.
  o->path = objects->add_string(f.link + 7, f.link_length - 7 - 10);
  const long seals = sys::call6(SYS_fcntl, f.fd, F_GET_SEALS);
  o->file.seals = seals > 0 ? uint32_t(seals) : 0;
  if (!fill(f, o, objects, why)) return -1;
  return index;
}

}  // namespace uffdlazy::ckpt
