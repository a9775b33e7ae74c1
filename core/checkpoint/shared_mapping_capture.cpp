#include "core/checkpoint/shared_mapping_capture.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/uio.h>

#include "core/base/align.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxRanges = 4096;
constexpr uint64_t kPage = 4096;

// A piece of a deleted file or memfd that is only mapped (no descriptor holds it).
struct Range {
  uint32_t object;
  uint32_t is_private;
  uint64_t start, end, offset;
};
struct Scratch {
  Range ranges[kMaxRanges] = {};
  uint32_t count = 0;
  uint64_t pagemap[512] = {};
  char text[1 << 16] = {};
};
constinit Scratch g;

long find(ObjectTable* objects, snap::ObjectKind kind, uint64_t dev, uint64_t ino) {
  for (uint32_t i = 0; i < objects->count(); i++) {
    const snap::ObjectRecord* o = objects->at(i);
    if (o->kind == uint32_t(kind) && o->ino == ino && o->dev == dev) return long(i);
  }
  return -1;
}

// /proc/sysvipc/shm: "key shmid perms size ..." for segment `id`; false if absent.
bool sysv_segment(uint64_t id, uint32_t* perms, uint64_t* size) {
  const long n = read_small_file("/proc/sysvipc/shm", g.text, sizeof g.text);
  if (n <= 0) return false;
  const char* end = g.text + n;
  for (const char* p = g.text; p < end;) {
    const char* line_end = p;
    while (line_end < end && *line_end != '\n') line_end++;
    const char* q = p;
    while (q < line_end && *q == ' ') q++;
    if (q < line_end && *q == '-') q++;
    parse_number(&q, line_end);  // key
    while (q < line_end && *q == ' ') q++;
    const uint64_t shmid = parse_number(&q, line_end);
    while (q < line_end && *q == ' ') q++;
    const uint64_t mode = parse_number(&q, line_end, 8);
    while (q < line_end && *q == ' ') q++;
    const uint64_t bytes = parse_number(&q, line_end);
    if (shmid == id && q > p) {
      *perms = uint32_t(mode);
      *size = bytes;
      return true;
    }
    p = line_end + 1;
  }
  return false;
}

}  // namespace

long shared_memory_object(ObjectTable* objects, const MappedVma& v, LineWriter* why) {
  const bool sysv = v.path_length >= 5 && !memcmp(v.path, "/SYSV", 5);
  long index = find(objects, snap::ObjectKind::kSharedMemory, v.dev, v.ino);
  if (index < 0) {
    uint32_t perms = 0600;
    uint64_t size = 0;
    if (sysv) {
      // The segment's id is its inode; only one removed with IPC_RMID is out of every other
      // process's reach (by key or id), and so the same when made again with new ones.
      if (!sysv_segment(v.ino, &perms, &size)) {
        why->str("SysV shared memory at ").hex(v.start).str(" cannot be examined (/proc/sysvipc/shm)");
        return -1;
      }
      if (!(perms & 01000 /* SHM_DEST */)) {
        why->str("SysV shared memory segment ").u64(v.ino).str(" at ").hex(v.start)
            .str(" is not removed (IPC_RMID): a resume could not give it its key and id back");
        return -1;
      }
    }
    snap::ObjectRecord* o = objects->add(snap::ObjectKind::kSharedMemory, v.ino);
    if (!o) {
      why->str("too many objects");
      return -1;
    }
    o->dev = v.dev;
    o->shm.sysv_key = sysv ? 0 : -1;
    o->shm.sysv_id = sysv ? int32_t(v.ino) : -1;
    o->shm.mode = perms & 0777;
    o->shm.removed = sysv ? 1 : 0;
    o->shm.size = size;
    index = long(objects->count() - 1);
  }
  snap::ObjectRecord* o = objects->at(uint32_t(index));
  // Shared anonymous memory has no size of its own to read: as far as it is mapped.
  if (!sysv && v.offset + (v.end - v.start) > o->shm.size) o->shm.size = v.offset + (v.end - v.start);
  return index;
}

long mapped_file_object(ObjectTable* objects, const MappedVma& v, LineWriter* why) {
  const bool memfd = v.path_length > 7 && !memcmp(v.path, "/memfd:", 7);
  const snap::ObjectKind kind = memfd ? snap::ObjectKind::kMemfd : snap::ObjectKind::kDeletedFile;
  long index = find(objects, kind, v.dev, v.ino);
  if (index < 0) {
    // Only mapped: its contents are read through its mappings once they are all known.
    snap::ObjectRecord* o = objects->add(kind, v.ino);
    if (!o) {
      why->str("too many objects");
      return -1;
    }
    o->dev = v.dev;
    o->flags |= snap::kObjectDeleted | snap::kObjectOnlyMapped;
    o->file.mode = 0100600;
    o->file.uid = uint32_t(sys::call6(SYS_geteuid));
    o->file.gid = uint32_t(sys::call6(SYS_getegid));
    const size_t name_from = memfd ? 7 : 0;
    o->path = objects->add_string(v.path + name_from, v.path_length - name_from);
    index = long(objects->count() - 1);
  }
  snap::ObjectRecord* o = objects->at(uint32_t(index));
  if (o->flags & snap::kObjectOnlyMapped) {
    if (g.count == kMaxRanges) {
      why->str("too many mappings of deleted files");
      return -1;
    }
    g.ranges[g.count++] = Range{uint32_t(index), v.is_private ? 1u : 0u, v.start, v.end, v.offset};
    if (v.offset + (v.end - v.start) > o->file.size) o->file.size = v.offset + (v.end - v.start);
  }
  return index;
}

void reset_mapped_files() { g.count = 0; }

bool fill_mapped_files(ObjectTable* objects, LineWriter* why) {
  const long pagemap = sys::openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) {
    why->str("cannot read /proc/self/pagemap");
    return false;
  }
  const long pid = sys::getpid();
  bool ok = true;
  for (uint32_t i = 0; i < objects->count() && ok; i++) {
    snap::ObjectRecord* o = objects->at(i);
    if (!(o->flags & snap::kObjectOnlyMapped)) continue;
    // One extent per page that some mapping shows, in file order: [0, size) page by page.
    const uint64_t pages = align_up(o->file.size, kPage) / kPage;
    auto* extent = reinterpret_cast<snap::FileExtent*>(objects->grow_data(o, sizeof(snap::FileExtent)));
    uint8_t* bytes = extent ? objects->grow_data(o, pages * kPage) : nullptr;
    if (!bytes) {
      why->str("the mapped deleted file ").str(objects->string_at(o->path)).str(" is larger than a checkpoint keeps");
      ok = false;
      break;
    }
    o->count = 1;
    uint64_t readable = 0;
    for (uint64_t p = 0; p < pages; p++) {
      const uint64_t at = p * kPage;
      // A mapping that shows the file's own page there.
      const Range* from = nullptr;
      for (uint32_t r = 0; r < g.count && !from; r++) {
        const Range& x = g.ranges[r];
        if (x.object != i || at < x.offset || at >= x.offset + (x.end - x.start)) continue;
        const uint64_t addr = x.start + (at - x.offset);
        if (x.is_private) {
          // A page the process changed hides the file's: not that mapping.
          uint64_t e = 0;
          sys::pread(int(pagemap), &e, 8, long(addr / kPage * 8));
          if ((e >> 63) & 1 && !((e >> 61) & 1)) continue;
        }
        from = &x;
      }
      if (!from) {
        memset(bytes + at, 0, kPage);  // unknown (changed in every mapping): zeros
        continue;
      }
      const iovec local = {bytes + at, kPage};
      const iovec remote = {reinterpret_cast<void*>(from->start + (at - from->offset)), kPage};
      // process_vm_readv answers EFAULT where a page lies beyond the file's end (a read would
      // be SIGBUS).
      if (sys::call6(SYS_process_vm_readv, pid, long(&local), 1, long(&remote), 1, 0) != long(kPage)) break;
      readable = at + kPage;
    }
    o->file.size = readable;
    objects->shrink_data(o, pages * kPage - readable);
    extent->offset = 0;
    extent->length = readable;
  }
  sys::close(int(pagemap));
  return ok;
}

}  // namespace uffdlazy::ckpt
