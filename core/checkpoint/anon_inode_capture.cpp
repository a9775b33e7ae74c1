// eventfd, signalfd, timerfd, epoll and inotify descriptors: their whole state is in fdinfo (an
// inotify watch's path excepted, which the shim noted when the watch was added). Each description
// is an object of its own (they are all the one anonymous inode).
#include <cstring>
#include <fcntl.h>
#include <linux/kcmp.h>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/inotify_paths.h"
#include "core/checkpoint/object_capture.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

const char* end_of(const char* p) {
  while (*p && *p != '\n') p++;
  return p;
}

uint64_t number_at(const char* info, const char* key, int base, bool* found) {
  const char* p = line_value(info, key);
  if (!p) {
    *found = false;
    return 0;
  }
  return parse_number(&p, end_of(p), base);
}

// "(sec, nsec)" after key.
void pair_at(const char* info, const char* key, int64_t* sec, int64_t* nsec, bool* found) {
  const char* p = line_value(info, key);
  if (!p || *p != '(') {
    *found = false;
    return;
  }
  p++;
  const char* end = end_of(p);
  *sec = int64_t(parse_number(&p, end));
  while (p < end && (*p == ',' || *p == ' ')) p++;
  *nsec = int64_t(parse_number(&p, end));
}

// The value after key inside [p, end) (one line), its blanks skipped; nullptr if absent.
const char* field(const char* p, const char* end, const char* key) {
  const size_t k = strlen(key);
  for (; p + k <= end; p++) {
    if (!memcmp(p, key, k)) {
      p += k;
      while (p < end && *p == ' ') p++;
      return p;
    }
  }
  return nullptr;
}

snap::ObjectRecord* add(const OpenFile& f, snap::ObjectKind kind, ObjectTable* objects, LineWriter* why) {
  snap::ObjectRecord* o = objects->add(kind, uint64_t(f.st.st_ino));
  if (!o) why->str("too many objects");
  else o->dev = uint64_t(f.st.st_dev);
  return o;
}

long unreadable(const OpenFile& f, LineWriter* why) {
  about(why, f).str("cannot be read back from /proc/self/fdinfo");
  return -1;
}

// new_encode_dev, as stat(2) reports st_dev, from the kernel's own dev_t (fdinfo's sdev).
uint64_t user_dev(uint64_t kdev) {
  const uint64_t major = kdev >> 20, minor = kdev & 0xfffff;
  return (minor & 0xff) | (major << 8) | ((minor & ~0xffull) << 12);
}

}  // namespace

long capture_eventfd(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  bool found = true;
  const uint64_t count = number_at(f.info, "eventfd-count:", 16, &found);
  bool semaphore_known = true;
  const uint64_t semaphore = number_at(f.info, "eventfd-semaphore:", 10, &semaphore_known);
  if (!found || !semaphore_known) return unreadable(f, why);
  snap::ObjectRecord* o = add(f, snap::ObjectKind::kEventfd, objects, why);
  if (!o) return -1;
  o->eventfd.count = count;
  o->eventfd.semaphore = semaphore ? 1 : 0;
  return long(objects->count() - 1);
}

long capture_signalfd(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  bool found = true;
  const uint64_t mask = number_at(f.info, "sigmask:", 16, &found);
  if (!found) return unreadable(f, why);
  snap::ObjectRecord* o = add(f, snap::ObjectKind::kSignalfd, objects, why);
  if (!o) return -1;
  o->signalfd.mask = mask;
  return long(objects->count() - 1);
}

long capture_timerfd(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  bool found = true;
  snap::TimerfdState t = {};
  t.clock = int32_t(number_at(f.info, "clockid:", 10, &found));
  t.ticks = number_at(f.info, "ticks:", 10, &found);
  t.settime_flags = uint32_t(number_at(f.info, "settime flags:", 8, &found));
  pair_at(f.info, "it_value:", &t.value_sec, &t.value_nsec, &found);
  pair_at(f.info, "it_interval:", &t.interval_sec, &t.interval_nsec, &found);
  if (!found) return unreadable(f, why);
  snap::ObjectRecord* o = add(f, snap::ObjectKind::kTimerfd, objects, why);
  if (!o) return -1;
  o->timerfd = t;
  return long(objects->count() - 1);
}

long capture_epoll(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  snap::ObjectRecord* o = add(f, snap::ObjectKind::kEpoll, objects, why);
  if (!o) return -1;
  const long pid = sys::getpid();
  // "tfd: %8d events: %8x data: %16llx pos:%lli ino:%lx sdev:%x", one line per watched descriptor.
  for (const char* p = f.info; (p = line_value(p, "tfd:")) != nullptr;) {
    const char* end = end_of(p);
    snap::EpollEntry e = {};
    const char* line = p;
    e.fd = int32_t(parse_number(&p, end));
    // Entries added under the same number (one closed or replaced since) are told apart by their
    // rank among those with that number, in the order fdinfo lists them (KCMP_EPOLL_TFD's toff).
    uint32_t rank = 0;
    for (const char* q = f.info; (q = line_value(q, "tfd:")) != nullptr && q < line;) {
      const char* q_end = end_of(q);
      rank += parse_number(&q, q_end) == uint64_t(e.fd);
      q = q_end;
    }
    const char* ev = field(p, end, "events:");
    const char* data = field(p, end, "data:");
    if (!ev || !data) return unreadable(f, why);
    e.events = uint32_t(parse_number(&ev, end, 16));
    e.data = parse_number(&data, end, 16);
    // The watched file must still be the one at that number: the resume adds it by number.
    struct {
      uint32_t efd, tfd, toff;
    } slot = {uint32_t(f.fd), uint32_t(e.fd), rank};
    e.file_fd = -1;
    if (sys::call6(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, e.fd, long(&slot)) == 0) {
      e.file_fd = e.fd;
    } else {
      // The number was closed (or reused) since the file was added: the file is open elsewhere
      // (the entry would be gone otherwise).
      long count = 0;
      const int* fds = open_descriptors(&count);
      for (long k = 0; k < count && e.file_fd < 0; k++) {
        if (fds[k] > 2 && sys::call6(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, fds[k], long(&slot)) == 0) e.file_fd = fds[k];
      }
    }
    if (e.file_fd < 0) {
      about(why, f).str("watches a file (added as descriptor ").i64(e.fd)
          .str(") that only another process or standard input, output or error holds now");
      return -1;
    }
    auto* dst = reinterpret_cast<snap::EpollEntry*>(objects->grow_data(o, sizeof e));
    if (!dst) {
      why->str("too many epoll entries");
      return -1;
    }
    memcpy(dst, &e, sizeof e);
    o->count++;
    p = end;
  }
  return long(objects->count() - 1);
}

long capture_inotify(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  snap::ObjectRecord* o = add(f, snap::ObjectKind::kInotify, objects, why);
  if (!o) return -1;
  // "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x ..." per watch.
  for (const char* p = f.info; (p = line_value(p, "inotify wd:")) != nullptr;) {
    const char* end = end_of(p);
    snap::InotifyWatch w = {};
    w.wd = int32_t(parse_number(&p, end, 16));
    const char* ino = field(p, end, " ino:");
    const char* sdev = field(p, end, "sdev:");
    const char* mask = field(p, end, " mask:");
    if (!ino || !sdev || !mask) return unreadable(f, why);
    w.ino = parse_number(&ino, end, 16);
    w.dev = user_dev(parse_number(&sdev, end, 16));
    w.mask = uint32_t(parse_number(&mask, end, 16));
    char path[4096];
    bool nofollow = false;
    const long n = inotify_watch_path(f.fd, w.wd, w.dev, w.ino, path, sizeof path, &nofollow);
    if (nofollow) w.mask |= 0x02000000;  // IN_DONT_FOLLOW
    if (n < 0) {
      about(why, f).str("watches an inode (").u64(w.ino).str(") whose path the shim did not see being added");
      return -1;
    }
    w.path = objects->add_string(path, size_t(n));
    auto* dst = reinterpret_cast<snap::InotifyWatch*>(objects->grow_data(o, sizeof w));
    if (!dst) {
      why->str("too many inotify watches");
      return -1;
    }
    memcpy(dst, &w, sizeof w);
    o->count++;
    p = end;
  }
  // Events waiting to be read cannot be put back into a new inotify instance.
  int queued = 0;
  if (sys::ioctl(f.fd, 0x541B /* FIONREAD */, &queued) == 0 && queued > 0) {
    about(why, f).str("has ").i64(queued).str(" bytes of events not read yet, which a resume could not queue again");
    return -1;
  }
  return long(objects->count() - 1);
}

}  // namespace uffdlazy::ckpt
