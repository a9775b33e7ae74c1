#include "core/pager/run_state.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <linux/futex.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "core/base/aside_mmap.h"
#include "core/base/high_fd.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kPage = 4096;
constexpr char kVar[] = "UFFDLAZY_RUN=";
// The environment string of a process that created the page or reached it through its holder
// (putenv keeps the pointer).
constinit char g_env_entry[sizeof kVar + RunState::kValueMax] = {};

// UFFDLAZY_RUN's value: FD:DEV:INO:PID, the descriptor the page is inherited on, the file's
// identity, and the process that holds it for the whole run (the uffdlazy command, else the
// process that created it).
struct RunName {
  FdIdentity id;
  long holder = 0;
};

bool parse_number(const char*& p, uint64_t* out, char end) {
  uint64_t v = 0;
  const char* start = p;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (~0ull - 9) / 10) return false;
    v = v * 10 + uint64_t(*p - '0');
  }
  if (p == start || *p != end) return false;
  if (end) p++;
  *out = v;
  return true;
}

bool parse(const char* p, RunName* n) {
  uint64_t fd, dev, ino, pid;
  if (!parse_number(p, &fd, ':') || !parse_number(p, &dev, ':') || !parse_number(p, &ino, ':') ||
      !parse_number(p, &pid, 0) || fd > (1u << 30) || pid > (1u << 30)) {
    return false;
  }
  n->id.fd = int(fd);
  n->id.dev = dev;
  n->id.ino = ino;
  n->holder = long(pid);
  return true;
}

// Appends v in decimal at w; returns the new end.
char* put_number(char* w, uint64_t v) {
  char digits[24];
  int n = 0;
  for (; n == 0 || v; v /= 10) digits[n++] = char('0' + v % 10);
  while (n) *w++ = digits[--n];
  return w;
}

void format(const FdIdentity& id, long holder, char* out) {
  char* w = put_number(out, uint64_t(id.fd));
  *w++ = ':';
  w = put_number(w, id.dev);
  *w++ = ':';
  w = put_number(w, id.ino);
  *w++ = ':';
  w = put_number(w, uint64_t(holder));
  *w = 0;
}

// Maps the page open on fd, which must be the file `id` names (checked by the caller). Null if it
// is not a run page.
RunShared* map_page(int fd) {
  struct stat st;
  if (sys::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != long(kPage)) return nullptr;
  long m = mmap_aside(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (sys::failed(m)) return nullptr;
  RunShared* s = reinterpret_cast<RunShared*>(m);
  if (__atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != RunShared::kMagic) {
    sys::munmap(s, kPage);
    return nullptr;
  }
  return s;
}

// The page through the holder's descriptor, when the one this process inherited is gone (a
// wrapper or the program closed it, perhaps reusing the number). Checked by identity before it
// is opened (stat follows /proc's link without opening anything) and again once open; the
// descriptor is closed once the page is mapped, so this process has none.
RunShared* map_from_holder(const RunName& n) {
  if (n.holder <= 0 || n.holder == sys::getpid()) return nullptr;
  char path[64] = "/proc/";
  char* w = put_number(path + 6, uint64_t(n.holder));
  memcpy(w, "/fd/", 4);
  w = put_number(w + 4, uint64_t(n.id.fd));
  *w = 0;
  struct stat st;
  if (sys::call6(SYS_newfstatat, AT_FDCWD, reinterpret_cast<long>(path), reinterpret_cast<long>(&st), 0) != 0 ||
      st.st_dev != n.id.dev || st.st_ino != n.id.ino) {
    return nullptr;
  }
  long fd = sys::openat(AT_FDCWD, path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return nullptr;
  FdIdentity opened;
  RunShared* s = opened.take(int(fd)) && opened.dev == n.id.dev && opened.ino == n.id.ino ? map_page(int(fd)) : nullptr;
  sys::close(int(fd));
  return s;
}

}  // namespace

int RunState::create_page(RunShared** mapped, char (&value)[kValueMax], long holder) {
  long made = sys::call6(SYS_memfd_create, reinterpret_cast<long>("uffdlazy-run"), MFD_CLOEXEC);
  if (made < 0) return int(made);
  // Out of the program's way, and inherited across exec (the only way the page reaches a program
  // that replaces this one).
  const int fd = move_fd_high(int(made));
  FdIdentity id;
  if (fd < high_fd_floor() || sys::call6(SYS_fcntl, fd, F_SETFD, 0) != 0 || !id.take(fd)) {
    sys::close(fd);
    return -EMFILE;
  }
  long r = sys::ftruncate(fd, kPage);
  long m = r == 0 ? mmap_aside(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : r;
  if (sys::failed(m)) {
    sys::close(fd);
    return int(m);
  }
  RunShared* s = reinterpret_cast<RunShared*>(m);
  s->snapshot_bytes = -1;
  s->report_faults = -1;
  s->trace_faults = -1;
  __atomic_store_n(&s->magic, RunShared::kMagic, __ATOMIC_RELEASE);
  *mapped = s;
  format(id, holder, value);
  return fd;
}

bool RunState::attach(char** envp, bool create) {
  pid_ = uint32_t(sys::getpid());
  for (char** e = envp; e && *e; e++) {
    if (strncmp(*e, kVar, sizeof kVar - 1)) continue;
    RunName n;
    if (!parse(*e + sizeof kVar - 1, &n)) break;  // not ours to read: no descriptor is touched
    // The inherited number, if it still names the page (the program may have closed it and
    // opened one of its own files there); else the holder's.
    shared_ = n.id.still_valid() ? map_page(n.id.fd) : nullptr;
    if (!shared_) shared_ = map_from_holder(n);
    break;
  }
  if (!shared_ && create) {
    // No run to join (or it is lost to this process): this one starts a run of its own, for the
    // programs it runs.
    char value[kValueMax];
    if (create_page(&shared_, value, sys::getpid()) < 0) return false;
    memcpy(g_env_entry, kVar, sizeof kVar - 1);
    memcpy(g_env_entry + sizeof kVar - 1, value, sizeof value);
    putenv(g_env_entry);
  }
  if (!shared_) return false;
  uint32_t none = 0;
  __atomic_compare_exchange_n(&shared_->first_pid, &none, pid_, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
  return true;
}

bool RunState::first() const { return shared_ && __atomic_load_n(&shared_->first_pid, __ATOMIC_ACQUIRE) == pid_; }

void RunState::lock() {
  // A futex shared between processes (no FUTEX_PRIVATE_FLAG).
  uint32_t expected = 0;
  if (__atomic_compare_exchange_n(&shared_->lock, &expected, 1u, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  while (__atomic_exchange_n(&shared_->lock, 2u, __ATOMIC_ACQUIRE) != 0) {
    sys::futex(&shared_->lock, FUTEX_WAIT, 2);
  }
}

void RunState::unlock() {
  if (__atomic_exchange_n(&shared_->lock, 0u, __ATOMIC_RELEASE) == 2) sys::futex(&shared_->lock, FUTEX_WAKE, 1);
}

}  // namespace uffdlazy
