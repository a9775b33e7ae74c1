#include "core/checkpoint/descriptor_capture.h"

#include <cstring>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>

#include "core/base/decimal.h"
#include "core/base/dir_entries.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/object_capture.h"
#include "core/checkpoint/proc_file.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxDescriptors = 1u << 16;

struct Scratch {
  long fd_count = 0;
  int fds[kMaxDescriptors] = {};
  char target[4200] = {};
  char info[65536] = {};  // an epoll's or inotify's fdinfo lists every entry
};
constinit Scratch g;

bool harmless_device(const char* path) {
  static const char* const kDevices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
  for (const char* d : kDevices) {
    if (!strcmp(path, d)) return true;
  }
  return false;
}

bool ends_with(const char* s, size_t n, const char* suffix) {
  const size_t k = strlen(suffix);
  return n >= k && !memcmp(s + n - k, suffix, k);
}

// The descriptors open now, ascending.
long list_descriptors(int skip) {
  long dir = sys::openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  long count = 0;
  for_each_dir_entry(int(dir), [&](const char* name) {
    if (*name < '0' || *name > '9') return;
    const char* q = name;
    const int fd = int(parse_number(&q, name + 16));
    if (fd == int(dir) || fd == skip || count == long(kMaxDescriptors)) return;
    g.fds[count++] = fd;
  });
  sys::close(int(dir));
  // Insertion sort: the kernel lists them in order already.
  for (long i = 1; i < count; i++) {
    for (long j = i; j > 0 && g.fds[j - 1] > g.fds[j]; j--) {
      const int t = g.fds[j];
      g.fds[j] = g.fds[j - 1];
      g.fds[j - 1] = t;
    }
  }
  return count;
}

// The earlier descriptor whose open file description this one shares (a dup), or -1.
int shared_description(const TableBuilder& table, const struct stat& st, int fd) {
  const long pid = sys::getpid();
  for (uint32_t i = 0; i < table.count(); i++) {
    const auto* d = static_cast<const snap::DescriptorRecord*>(table.record(i));
    if (d->fd == fd || d->same_as != -1 || d->ino != uint64_t(st.st_ino) || d->dev != uint64_t(st.st_dev)) continue;
    if (sys::call6(SYS_kcmp, pid, pid, KCMP_FILE, d->fd, fd) == 0) return d->fd;
  }
  return -1;
}

// The object an anonymous-inode descriptor opens, by its link's name.
long capture_anon_inode(const OpenFile& f, ObjectTable* objects, LineWriter* why) {
  const char* kind = f.link + 11;
  if (!strcmp(kind, "[eventfd]")) return capture_eventfd(f, objects, why);
  if (!strcmp(kind, "[signalfd]")) return capture_signalfd(f, objects, why);
  if (!strcmp(kind, "[timerfd]")) return capture_timerfd(f, objects, why);
  if (!strcmp(kind, "[eventpoll]")) return capture_epoll(f, objects, why);
  if (!strcmp(kind, "inotify")) return capture_inotify(f, objects, why);
  about(why, f).str("cannot be resumed");
  return -1;
}

}  // namespace

const int* open_descriptors(long* count) {
  *count = g.fd_count;
  return g.fds;
}

LineWriter& about(LineWriter* why, const OpenFile& f) {
  why->str("descriptor ").i64(f.fd).str(" (");
  if (!strncmp(f.link, "anon_inode:", 11)) {
    const char* kind = f.link + 11;
    const size_t n = strlen(kind);
    if (n > 2 && kind[0] == '[') why->str(kind + 1, n - 2);
    else why->str(kind);
  } else if (!strncmp(f.link, "pipe:", 5)) {
    why->str("a pipe");
  } else if (!strncmp(f.link, "socket:", 7)) {
    why->str("a socket");
  } else {
    append_path(why, f.link, f.link_length);
  }
  return why->str(") ");
}

bool capture_descriptors(const ShimDescriptors& shim, TableBuilder* table, ObjectTable* objects, LineWriter* why) {
  reset_socket_capture();
  const long count = list_descriptors(-1);
  g.fd_count = count;
  if (count < 0) {
    why->str("cannot list the process's descriptors");
    return false;
  }
  bool found_uffd = false;
  for (long i = 0; i < count; i++) {
    const int fd = g.fds[i];
    if (fd <= 2) continue;
    snap::DescriptorRecord* d = table->add_record<snap::DescriptorRecord>();
    if (!d) {
      why->str("too many descriptors");
      return false;
    }
    d->fd = fd;
    d->same_as = -1;
    char path[64] = "/proc/self/fd/";
    format_u64(path + 14, uint64_t(fd));
    const long len = read_link(path, g.target, sizeof g.target);
    char info_path[64] = "/proc/self/fdinfo/";
    format_u64(info_path + 18, uint64_t(fd));
    if (read_small_file(info_path, g.info, sizeof g.info) <= 0) g.info[0] = 0;
    const char* pos = line_value(g.info, "pos:");
    const char* flags_text = line_value(g.info, "flags:");
    const uint32_t flags = flags_text ? uint32_t(parse_number(&flags_text, flags_text + 16, 8)) : 0;
    d->position = pos ? parse_number(&pos, pos + 24) : 0;
    d->cloexec = (flags & O_CLOEXEC) ? 1 : 0;
    d->open_flags = flags & ~uint32_t(O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
    if (fd == shim.uffd) {
      d->kind = uint32_t(snap::DescriptorKind::kShimUffd);
      found_uffd = true;
      continue;
    }
    if (fd == shim.stderr_copy) {
      d->kind = uint32_t(snap::DescriptorKind::kShimStderr);
      continue;
    }
    OpenFile f{fd, g.target, size_t(len > 0 ? len : 0), g.info, {}, flags};
    if (len <= 0 || sys::fstat(fd, &f.st) < 0) {
      why->str("descriptor ").i64(fd).str(" cannot be examined");
      return false;
    }
    d->dev = uint64_t(f.st.st_dev);
    d->ino = uint64_t(f.st.st_ino);
    d->mode = uint32_t(f.st.st_mode);
    const int first = shared_description(*table, f.st, fd);
    if (first >= 0) {
      // A dup: made again from the first one, so flags and offset stay shared.
      for (uint32_t k = 0; k < table->count(); k++) {
        const auto* o = static_cast<const snap::DescriptorRecord*>(table->record(k));
        if (o->fd != first) continue;
        d->kind = o->kind;
        d->object = o->object;
        d->path = o->path;
      }
      d->same_as = first;
      continue;
    }
    const bool deleted = ends_with(g.target, size_t(len), " (deleted)");
    const bool named = g.target[0] == '/';
    long object = -2;  // -2: a file reopened by path
    if (!strncmp(g.target, "pipe:", 5) || (named && S_ISFIFO(f.st.st_mode))) {
      object = capture_pipe(f, objects, why);
    } else if (!strncmp(g.target, "socket:", 7)) {
      object = capture_socket(f, objects, why);
    } else if (!strncmp(g.target, "anon_inode:", 11)) {
      object = capture_anon_inode(f, objects, why);
    } else if (named && deleted && !strncmp(g.target, "/memfd:", 7) && S_ISREG(f.st.st_mode)) {
      object = capture_memfd(f, objects, why);
    } else if (named && deleted) {
      object = capture_deleted_file(f, objects, why);
    } else if (!named || !(S_ISREG(f.st.st_mode) || S_ISDIR(f.st.st_mode) ||
                           (S_ISCHR(f.st.st_mode) && harmless_device(g.target)))) {
      about(why, f).str("cannot be reopened by a resume");
      return false;
    }
    if (object == -1) return false;
    if (object >= 0) {
      d->kind = uint32_t(snap::DescriptorKind::kObject);
      d->object = uint32_t(object) + 1;
      continue;
    }
    d->kind = uint32_t(snap::DescriptorKind::kFile);
    // The process's own /proc directory is the resumed process's: /proc/self.
    char own[32] = "/proc/";
    const size_t digits = format_u64(own + 6, uint64_t(sys::getpid()));
    own[6 + digits] = '/';
    own[7 + digits] = 0;
    if (!strncmp(g.target, own, 7 + digits)) {
      char self[4200] = "/proc/self/";
      const size_t rest = size_t(len) - (7 + digits);
      if (11 + rest < sizeof self) {
        memcpy(self + 11, g.target + 7 + digits, rest);
        d->path = table->add_string(self, 11 + rest);
        continue;
      }
    }
    d->path = table->add_string(g.target, size_t(len));
  }
  if (shim.uffd >= 0 && !found_uffd) {
    why->str("the program closed the shim's userfaultfd (descriptor ").i64(shim.uffd).str(")");
    return false;
  }
  if (table->overflowed() || objects->overflowed()) {
    why->str(table->overflowed() ? "too many descriptors" : "too many objects");
    return false;
  }
  return check_pipe_ends(*table, objects, why) && check_socket_ends(*table, objects, why);
}

}  // namespace uffdlazy::ckpt
