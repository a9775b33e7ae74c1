// Objects (process_format.h ObjectRecord): made before the point of no return, each at a "staging"
// descriptor number above every number the process uses, so that anything that cannot be made is
// refused (exit 2) with nothing of the process started. Then, once the address space is in place,
// the descriptors are put at their numbers (each open file description once, its dups after it),
// epoll interest lists filled (epoll_ctl takes the watched descriptor's final number), and last,
// just before the program goes on, the timers armed with the time they had left.
#include <cerrno>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <linux/prctl.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "tools/restorer/restorer.h"

namespace restorer {

Made g_made[kMaxObjects];
int g_staging_floor = 1 << 30;

namespace {

int g_next_staging = -1;
constexpr int kTimerCreateRestoreIds = 77;  // PR_TIMER_CREATE_RESTORE_IDS (Linux 6.15)

// The descriptor of the object's first open file description (its final number), or -1.
int final_fd(uint32_t object) {
  for (uint32_t i = 0; i < g_image.descriptor_count; i++) {
    const snap::DescriptorRecord d = g_image.descriptor(i);
    if (d.object == object + 1 && d.same_as == -1) return d.fd;
  }
  return -1;
}

void eventfd_object(uint32_t i, const snap::ObjectRecord& o) {
  long fd = sys::call6(SYS_eventfd2, 0, O_CLOEXEC | (o.eventfd.semaphore ? 1 /* EFD_SEMAPHORE */ : 0));
  if (fd >= 0 && o.eventfd.count) {
    const uint64_t count = o.eventfd.count;
    if (sys::write(int(fd), &count, 8) != 8) {
      sys::close(int(fd));
      fd = -EINVAL;
    }
  }
  g_made[i].fd = stage(fd, "an eventfd");
}

void signalfd_object(uint32_t i, const snap::ObjectRecord& o) {
  const uint64_t mask = o.signalfd.mask;
  g_made[i].fd = stage(sys::call6(SYS_signalfd4, -1, long(&mask), 8, O_CLOEXEC), "a signalfd");
}

void timerfd_object(uint32_t i, const snap::ObjectRecord& o) {
  // Armed last (arm_timers), with the time it had left.
  g_made[i].fd = stage(sys::call6(SYS_timerfd_create, o.timerfd.clock, O_CLOEXEC), "a timerfd");
}

void epoll_object(uint32_t i) {
  // Its interest list once every descriptor is at its number (add_epoll_entries).
  g_made[i].fd = stage(sys::call6(SYS_epoll_create1, O_CLOEXEC), "an epoll descriptor");
}

// The instance now; its watches once the restorer has opened its last file (add_inotify_watches):
// opening files and binding sockets in a watched directory would queue events the program never
// had. Each watched path must still name the inode it named.
void inotify_object(uint32_t i, const snap::ObjectRecord& o) {
  g_made[i].fd = stage(sys::call6(SYS_inotify_init1, IN_CLOEXEC | IN_NONBLOCK), "an inotify descriptor");
  const auto* watches = reinterpret_cast<const snap::InotifyWatch*>(g_image.data_of(o));
  for (uint32_t k = 0; k < o.count; k++) {
    const char* path = g_image.object_string(watches[k].path);
    struct stat st;
    const int nofollow = (watches[k].mask & IN_DONT_FOLLOW) ? AT_SYMLINK_NOFOLLOW : 0;
    if (sys::call6(SYS_newfstatat, AT_FDCWD, long(path), long(&st), nofollow) < 0 || uint64_t(st.st_ino) != watches[k].ino ||
        uint64_t(st.st_dev) != watches[k].dev) {
      Line l;
      resume_line(l).s("inotify watch ").u(uint64_t(watches[k].wd)).s(": ").s(path)
          .s(" is gone or was replaced since the checkpoint");
      refuse_objects(l);
    }
  }
}

// Each watch at the watch descriptor it had: the kernel hands them out in increasing order, so a
// number skipped at the checkpoint (a watch removed since) is used up by a watch added and removed
// again at once.
void add_watches(int fd, const snap::ObjectRecord& o) {
  const auto* watches = reinterpret_cast<const snap::InotifyWatch*>(g_image.data_of(o));
  int32_t next = 1;
  for (;;) {
    // The smallest watch descriptor not made yet (fdinfo lists them in no useful order).
    const snap::InotifyWatch* w = nullptr;
    for (uint32_t k = 0; k < o.count; k++) {
      if (watches[k].wd >= next && (!w || watches[k].wd < w->wd)) w = &watches[k];
    }
    if (!w) break;
    while (next < w->wd) {
      const long skip = sys::call6(SYS_inotify_add_watch, fd, long("/"), IN_ATTRIB);
      if (skip >= 0) sys::call6(SYS_inotify_rm_watch, fd, skip);
      if (skip < 0 || skip >= w->wd) break;
      next = int32_t(skip) + 1;
    }
    const char* path = g_image.object_string(w->path);
    const long wd = sys::call6(SYS_inotify_add_watch, fd, long(path), w->mask);
    if (wd != w->wd) {
      Line l;
      resume_line(l).s("cannot watch ").s(path).s(" again as inotify watch ").u(uint64_t(w->wd)).s(": ");
      if (wd < 0) l.err(wd);
      else l.s("got watch ").u(uint64_t(wd));
      die(kBroken, l);
    }
    next = w->wd + 1;
  }
  // The watches added and removed above queued IN_IGNORED events; the program had none waiting.
  const long flags = sys::call6(SYS_fcntl, fd, F_GETFL);
  sys::call6(SYS_fcntl, fd, F_SETFL, flags | O_NONBLOCK);
  static char events[4096];
  while (sys::read(fd, events, sizeof events) > 0) {
  }
  sys::call6(SYS_fcntl, fd, F_SETFL, flags);
}

// A pipe made from pipe2(): its buffer filled through the write end (a FIFO: opened by name
// read-write first, which never waits for the other end).
void pipe_object(uint32_t i, const snap::ObjectRecord& o) {
  int ends[2] = {-1, -1};
  if (o.path.length) {
    const char* name = g_image.object_string(o.path);
    long fd;
    if (o.flags & snap::kObjectDeleted) {
      fd = make_unnamed(name, o.file.mode, "a FIFO");
    } else {
      fd = sys::openat(AT_FDCWD, name, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    }
    ends[0] = stage(fd, "a FIFO");
    ends[1] = -1;
  } else {
    long r = sys::call6(SYS_pipe2, long(ends), O_CLOEXEC | O_NONBLOCK);
    if (r < 0) ends[0] = int(r);
    ends[0] = stage(ends[0], "a pipe");
    ends[1] = stage(ends[1], "a pipe");
  }
  const int writer = ends[1] >= 0 ? ends[1] : ends[0];
  if (o.pipe_capacity) sys::call6(SYS_fcntl, writer, F_SETPIPE_SZ, o.pipe_capacity);
  const uint8_t* data = g_image.data_of(o);
  for (uint64_t done = 0; done < o.data_length;) {
    const long n = sys::write(writer, data + done, o.data_length - done);
    if (n <= 0) {
      Line l;
      resume_line(l).s("cannot fill a pipe again with the ").u(o.data_length).s(" bytes it held: ").err(n < 0 ? n : -EIO);
      refuse_objects(l);
    }
    done += uint64_t(n);
  }
  g_made[i].fd = ends[0];
  g_made[i].write_end = ends[1];
}

// A description of object i with these open flags: the object's own descriptor the first time
// (pipes: the end that matches), else the object opened again through /proc (pipes, files).
long open_description(uint32_t i, uint32_t flags) {
  const snap::ObjectRecord& o = g_image.object(i);
  Made& m = g_made[i];
  const uint32_t mode = flags & O_ACCMODE;
  if (o.kind == uint32_t(snap::ObjectKind::kPipe) && !o.path.length) {
    if (mode == O_RDONLY && !m.read_taken) {
      m.read_taken = true;
      return m.fd;
    }
    if (mode == O_WRONLY && !m.write_taken) {
      m.write_taken = true;
      return m.write_end;
    }
  } else if (o.kind == uint32_t(snap::ObjectKind::kMemfd) && mode == O_RDWR && !m.read_taken) {
    // The memfd itself: a reopened one would count as a writer, and exec of it (fexecve) would
    // then fail with ETXTBSY where the program's own memfd did not.
    m.read_taken = true;
    return m.fd;
  } else if (o.kind != uint32_t(snap::ObjectKind::kPipe) && o.kind != uint32_t(snap::ObjectKind::kDeletedFile) &&
             o.kind != uint32_t(snap::ObjectKind::kMemfd)) {
    return m.fd;
  }
  char path[32] = "/proc/self/fd/";
  size_t n = 14;
  char digits[12];
  size_t k = 0;
  for (unsigned v = unsigned(m.fd); k == 0 || v; v /= 10) digits[k++] = char('0' + v % 10);
  while (k) path[n++] = digits[--k];
  path[n] = 0;
  const uint32_t keep = O_ACCMODE | O_DIRECTORY;
  return sys::openat(AT_FDCWD, path, int((flags & keep) | O_NONBLOCK | O_CLOEXEC));
}

// Whether the descriptor's object is seekable (its offset is restored).
bool has_offset(const snap::DescriptorRecord& d) {
  if (d.kind == uint32_t(snap::DescriptorKind::kFile)) {
    return (d.mode & 0170000) == 0100000 || (d.mode & 0170000) == 0040000;
  }
  const uint32_t k = g_image.object(d.object - 1).kind;
  return k == uint32_t(snap::ObjectKind::kDeletedFile) || k == uint32_t(snap::ObjectKind::kMemfd);
}

}  // namespace

int stage(long fd, const char* what) {
  if (fd < 0) {
    Line l;
    resume_line(l).s("cannot make ").s(what).s(" again: ").err(fd);
    refuse_objects(l);
  }
  if (int(fd) >= g_next_staging) {
    g_next_staging = int(fd) + 1;
    return int(fd);
  }
  const long moved = sys::call6(SYS_fcntl, fd, F_DUPFD_CLOEXEC, g_next_staging);
  sys::close(int(fd));
  if (moved < 0) {
    Line l;
    resume_line(l).s("cannot keep ").s(what).s(" aside: ").err(moved);
    refuse_objects(l);
  }
  g_next_staging = int(moved) + 1;
  return int(moved);
}

void refuse_objects(Line& l) {
  unbind_sockets();
  die(kRefused, l);
}

void create_objects(int first_staging) {
  g_next_staging = g_staging_floor = first_staging;
  if (g_image.object_count > kMaxObjects) {
    Line l;
    resume_line(l).s("too many objects");
    refuse_objects(l);
  }
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    if (g_image.object(i).kind != uint32_t(snap::ObjectKind::kPosixTimer)) continue;
    // Asking for the setting tells whether the kernel has it.
    if (sys::call6(SYS_prctl, kTimerCreateRestoreIds, 2 /* GET */, 0, 0, 0) < 0) {
      Line l;
      resume_line(l).s("the process has POSIX timers, and this kernel cannot create them with their ids "
                       "(PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15)");
      refuse_objects(l);
    }
    break;
  }
  for (uint32_t i = 0; i < g_image.object_count; i++) g_made[i] = Made{};
  // The working directory first: a deleted directory still open is the same one.
  enter_deleted_cwd();
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    switch (snap::ObjectKind(o.kind)) {
      case snap::ObjectKind::kPipe: pipe_object(i, o); break;
      case snap::ObjectKind::kEventfd: eventfd_object(i, o); break;
      case snap::ObjectKind::kSignalfd: signalfd_object(i, o); break;
      case snap::ObjectKind::kTimerfd: timerfd_object(i, o); break;
      case snap::ObjectKind::kEpoll: epoll_object(i); break;
      case snap::ObjectKind::kInotify: inotify_object(i, o); break;
      case snap::ObjectKind::kDeletedFile: deleted_file_object(i, o); break;
      case snap::ObjectKind::kMemfd: memfd_object(i, o); break;
      case snap::ObjectKind::kSharedMemory: shared_memory_object(i, o); break;
      default: break;  // sockets below; timers and the working directory later
    }
  }
  make_sockets();
}

void place_descriptors() {
  // The image stays open in the monitor's table only.
  sys::close(g_options.image_fd);
  for (uint32_t i = 0; i < g_image.descriptor_count; i++) {
    const snap::DescriptorRecord d = g_image.descriptor(i);
    long fd;
    if (d.same_as != -1) {
      fd = d.same_as;  // a dup of a description placed before it
    } else {
      switch (snap::DescriptorKind(d.kind)) {
        case snap::DescriptorKind::kShimUffd:
          continue;  // in place (or none: the shim then runs unpaged)
        case snap::DescriptorKind::kShimStderr:
          sys::call6(SYS_dup3, 2, d.fd, O_CLOEXEC);
          continue;
        case snap::DescriptorKind::kFile:
          fd = sys::openat(AT_FDCWD, g_image.descriptor_strings + d.path.offset, int(d.open_flags) | O_CLOEXEC);
          break;
        case snap::DescriptorKind::kObject:
          fd = open_description(d.object - 1, d.open_flags);
          break;
        default:
          continue;
      }
    }
    if (fd < 0) {
      Line l;
      resume_line(l).s("cannot reopen descriptor ").u(uint64_t(d.fd)).s(": ").err(fd);
      die(kBroken, l);
    }
    if (fd != d.fd) {
      const long r = sys::call6(SYS_dup3, fd, d.fd, d.cloexec ? O_CLOEXEC : 0);
      // Our own temporary descriptor goes; a staged one stays until every description is placed.
      if (d.same_as == -1 && fd < g_staging_floor) sys::close(int(fd));
      if (r < 0) {
        Line l;
        resume_line(l).s("cannot place descriptor ").u(uint64_t(d.fd)).s(": ").err(r);
        die(kBroken, l);
      }
    } else if (!d.cloexec) {
      sys::call6(SYS_fcntl, d.fd, F_SETFD, 0);
    }
    if (d.same_as != -1) continue;
    // The status flags the program had (O_NONBLOCK, O_APPEND, O_ASYNC, ...), and the offset.
    sys::call6(SYS_fcntl, d.fd, F_SETFL, long(d.open_flags & ~uint32_t(O_ACCMODE | O_DIRECTORY | O_LARGEFILE)));
    if (has_offset(d)) sys::call6(SYS_lseek, d.fd, long(d.position), 0);
  }
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    if (g_image.object(i).kind == uint32_t(snap::ObjectKind::kInotify)) add_watches(g_made[i].fd, g_image.object(i));
  }
  add_epoll_entries();
  seal_memfds();
  // Every description is in place: the staged descriptors go.
  if (g_next_staging > g_staging_floor) {
    sys::call6(SYS_close_range, unsigned(g_staging_floor), unsigned(g_next_staging - 1), 0);
  }
}

void add_epoll_entries() {
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kEpoll)) continue;
    const int epfd = final_fd(i);
    const auto* e = reinterpret_cast<const snap::EpollEntry*>(g_image.data_of(o));
    for (uint32_t k = 0; k < o.count; k++) {
      epoll_event ev = {};
      ev.events = e[k].events;
      ev.data.u64 = e[k].data;
      // A file added under a number it no longer has: put there for the call, then put back.
      long saved = -1, fd_flags = -1;
      const bool moved = e[k].file_fd != e[k].fd && e[k].file_fd >= 0;
      if (moved) {
        fd_flags = sys::call6(SYS_fcntl, e[k].fd, F_GETFD);
        if (fd_flags >= 0) saved = sys::call6(SYS_fcntl, e[k].fd, F_DUPFD_CLOEXEC, g_next_staging);
        sys::call6(SYS_dup3, e[k].file_fd, e[k].fd, 0);
      }
      const long r = sys::call6(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, e[k].fd, long(&ev));
      if (moved) {
        if (saved >= 0) {
          sys::call6(SYS_dup3, saved, e[k].fd, (fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
          sys::close(int(saved));
        } else {
          sys::close(e[k].fd);
        }
      }
      if (r < 0) {
        Line l;
        resume_line(l).s("cannot add descriptor ").u(uint64_t(e[k].fd)).s(" to epoll descriptor ").u(uint64_t(epfd))
            .s(" again: ").err(r);
        die(kBroken, l);
      }
    }
  }
}

void arm_posix_timer(const snap::ObjectRecord& o) {
  const snap::PosixTimerState& t = o.timer;
  sigevent ev = {};
  ev.sigev_notify = t.notify;
  ev.sigev_signo = t.signal;
  ev.sigev_value.sival_ptr = reinterpret_cast<void*>(t.sigev_value);
  if (t.notify & 4 /* SIGEV_THREAD_ID */) ev._sigev_un._tid = int(new_tid_of(t.thread));
  int id = t.id;
  long r = sys::call6(SYS_timer_create, t.clock, long(&ev), long(&id));
  if (r == 0 && id != t.id) r = -EEXIST;
  if (r == 0 && (t.value_sec || t.value_nsec)) {
    const itimerspec its = {{t.interval_sec, t.interval_nsec}, {t.value_sec, t.value_nsec}};
    r = sys::call6(SYS_timer_settime, id, 0, long(&its), 0);
  }
  if (r < 0) {
    Line l;
    resume_line(l).s("cannot make POSIX timer ").u(uint64_t(t.id)).s(" again: ").err(r);
    die(kBroken, l);
  }
}

void arm_timers() {
  timespec now = {};
  bool restore_ids = false;
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind == uint32_t(snap::ObjectKind::kTimerfd)) {
      const snap::TimerfdState& t = o.timerfd;
      const int fd = final_fd(i);
      itimerspec its = {{t.interval_sec, t.interval_nsec}, {t.value_sec, t.value_nsec}};
      if (!t.value_sec && !t.value_nsec) {
        // A periodic timer that had expired and was not read (fdinfo shows no time left): it goes
        // on, next due an interval from now.
        its.it_value = its.it_interval;
      }
      const bool armed = its.it_value.tv_sec || its.it_value.tv_nsec;
      if ((t.settime_flags & 1 /* TFD_TIMER_ABSTIME */) && armed) {
        // The time left at the checkpoint, from now, on the timer's clock.
        sys::clock_gettime(t.clock, &now);
        its.it_value.tv_sec += now.tv_sec;
        its.it_value.tv_nsec += now.tv_nsec;
        if (its.it_value.tv_nsec >= 1000000000) its.it_value.tv_sec++, its.it_value.tv_nsec -= 1000000000;
      }
      if (armed) sys::call6(SYS_timerfd_settime, fd, t.settime_flags, long(&its), 0);
      // Expirations not read yet (after settime, which clears them).
      uint64_t ticks = t.ticks;
      if (ticks) sys::ioctl(fd, _IOW('T', 0, uint64_t), &ticks);
    } else if (o.kind == uint32_t(snap::ObjectKind::kPosixTimer)) {
      // timer_create takes the id it is given while this is on.
      if (!restore_ids) sys::call6(SYS_prctl, kTimerCreateRestoreIds, 1 /* ON */, 0, 0, 0);
      restore_ids = true;
      arm_posix_timer(o);
    }
  }
  if (restore_ids) sys::call6(SYS_prctl, kTimerCreateRestoreIds, 0 /* OFF */, 0, 0, 0);
}

}  // namespace restorer
