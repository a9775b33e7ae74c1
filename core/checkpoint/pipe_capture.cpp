// Pipes and FIFOs: one object per pipe, whatever number of descriptors open it, with the bytes
// buffered in it at the checkpoint. Those are copied with tee(2) from a reader of our own into a
// pipe of our own: the program's pipe keeps every byte, in order, for the program to read.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>

#include "core/base/decimal.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/object_capture.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

bool deleted_name(const char* link, size_t n) { return n > 10 && !strcmp(link + n - 10, " (deleted)"); }

// Copies the bytes buffered in the pipe `fd` opens into the object's data; false with why.
bool copy_buffer(const OpenFile& f, snap::ObjectRecord* o, ObjectTable* objects, LineWriter* why) {
  char path[64] = "/proc/self/fd/";
  format_u64(path + 14, uint64_t(f.fd));
  // A reader of our own (the program's descriptor may be the write end, and its flags are its own).
  const long reader = sys::openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (reader < 0) {
    about(why, f).str("cannot be read back: ").errno_text(int(-reader));
    return false;
  }
  int queued = 0;
  long r = sys::ioctl(int(reader), FIONREAD, &queued);
  bool ok = r == 0;
  if (ok && queued > 0) {
    int copy[2] = {-1, -1};
    ok = sys::call6(SYS_pipe2, long(copy), O_CLOEXEC | O_NONBLOCK) == 0;
    // As many slots as the program's pipe: one tee copies all of its buffers.
    if (ok) sys::call6(SYS_fcntl, copy[1], F_SETPIPE_SZ, long(o->pipe_capacity));
    long teed = ok ? sys::call6(SYS_tee, reader, copy[1], queued, 2 /* SPLICE_F_NONBLOCK */) : -1;
    uint8_t* dst = ok && teed == queued ? objects->grow_data(o, uint64_t(queued)) : nullptr;
    ok = dst != nullptr;
    for (long got = 0; ok && got < queued;) {
      long n = sys::read(copy[0], dst + got, size_t(queued - got));
      if (n <= 0) ok = false;
      else got += n;
    }
    if (copy[0] >= 0) sys::close(copy[0]);
    if (copy[1] >= 0) sys::close(copy[1]);
    if (!ok && !objects->overflowed()) about(why, f).str("holds ").i64(queued).str(" bytes that could not be copied");
    if (!ok && objects->overflowed()) about(why, f).str("holds more bytes than a checkpoint keeps");
  } else if (!ok) {
    about(why, f).str("cannot be examined (FIONREAD: ").errno_text(int(-r)).str(")");
  }
  sys::close(int(reader));
  return ok;
}

}  // namespace

long capture_pipe(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  for (uint32_t i = 0; i < objects->count(); i++) {
    const snap::ObjectRecord* o = objects->at(i);
    if (o->kind == uint32_t(snap::ObjectKind::kPipe) && o->ino == uint64_t(f.st.st_ino) &&
        o->dev == uint64_t(f.st.st_dev)) {
      return long(i);
    }
  }
  snap::ObjectRecord* o = objects->add(snap::ObjectKind::kPipe, uint64_t(f.st.st_ino));
  if (!o) {
    why->str("too many objects");
    return -1;
  }
  o->dev = uint64_t(f.st.st_dev);
  o->file.mode = uint32_t(f.st.st_mode);
  if (f.link[0] == '/') {  // a FIFO, by its name
    const bool deleted = deleted_name(f.link, f.link_length);
    o->path = objects->add_string(f.link, f.link_length - (deleted ? 10 : 0));
    if (deleted) o->flags |= snap::kObjectDeleted;
  }
  const long capacity = sys::call6(SYS_fcntl, f.fd, F_GETPIPE_SZ);
  o->pipe_capacity = capacity > 0 ? uint32_t(capacity) : 65536;
  if (!copy_buffer(f, o, objects, why)) return -1;
  return long(objects->count() - 1);
}

bool check_pipe_ends(const TableBuilder& descriptors, ObjectTable* objects, LineWriter* why) {
  for (uint32_t i = 0; i < objects->count(); i++) {
    const snap::ObjectRecord* o = objects->at(i);
    if (o->kind != uint32_t(snap::ObjectKind::kPipe)) continue;
    int reader = -1, writer = -1;
    for (uint32_t k = 0; k < descriptors.count(); k++) {
      const auto* d = static_cast<const snap::DescriptorRecord*>(descriptors.record(k));
      if (d->object != i + 1) continue;
      const uint32_t mode = d->open_flags & O_ACCMODE;
      if (mode != O_WRONLY && reader < 0) reader = d->fd;
      if (mode != O_RDONLY && writer < 0) writer = d->fd;
    }
    // An end the process does not hold must be held by nobody: then a resume that makes the pipe
    // with that end closed gives the program what it would have had (end of file, EPIPE).
    if (writer < 0 && reader >= 0 && !o->path.length) {
      pollfd p = {reader, 0, 0};
      sys::call6(SYS_poll, long(&p), 1, 0);
      if (!(p.revents & POLLHUP)) {
        why->str("descriptor ").i64(reader).str(" is a pipe whose write end another process holds");
        return false;
      }
    }
    if (reader < 0 && writer >= 0) {
      pollfd p = {writer, 0, 0};
      sys::call6(SYS_poll, long(&p), 1, 0);
      if (!(p.revents & POLLERR)) {
        why->str("descriptor ").i64(writer).str(o->path.length ? " is a FIFO" : " is a pipe")
            .str(" whose read end another process holds");
        return false;
      }
    }
  }
  return true;
}

}  // namespace uffdlazy::ckpt
