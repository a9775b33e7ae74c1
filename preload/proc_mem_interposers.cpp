// The program reading and writing its own memory through /proc/self/mem (or /proc/PID/mem,
// /proc/thread-self/mem, /proc/PID/task/TID/mem).
//
// The kernel serves those accesses with a page lookup that may not wait for a fault handler (no
// FAULT_FLAG_ALLOW_RETRY): a registered page that is not in place yet makes the read or write
// fail with EIO, or stop short at that page, where without the shim the kernel would have faulted
// it in. So when such a call fails or stops short at a page the shim registered, the monitor puts
// the rest of the range in place (zeros, or what a snapshot owes) and the call is made again from
// where it stopped; another thread dropping the pages meanwhile (MADV_DONTNEED) only means going
// round again. The answer is the kernel's whenever the page where it stopped is not the shim's.
//
// Costs nothing on the way in: the call is made first, and only a failure (EIO) or a short count
// on a descriptor known to be such a file is looked at. Descriptors are known from open() (a path
// ending in "mem" is checked by the kernel's name for it); a descriptor got otherwise (dup, fcntl,
// inherited) is recognised at its first EIO. Covered: read, write, pread, pwrite (and their 64
// names). Not covered: readv/writev/preadv/pwritev, stdio (whose reads do not go through these
// symbols), io_uring, and other processes' memory files.
#include <cerrno>
#include <cstdarg>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/base/raw_syscall.h"
#include "core/pager/lazy_pager.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

// glibc's own bodies, exported under these names: the same calls (cancellation points included)
// without coming back here.
extern "C" {
ssize_t __read(int fd, void* buf, size_t n);
ssize_t __write(int fd, const void* buf, size_t n);
ssize_t __pread64(int fd, void* buf, size_t n, off64_t off);
ssize_t __pwrite64(int fd, const void* buf, size_t n, off64_t off);
off64_t __lseek(int fd, off64_t off, int whence);
int __close(int fd);
int __open64(const char* path, int flags, ...);
}

namespace {

using OpenatFn = int (*)(int, const char*, int, ...);
using Open2Fn = int (*)(const char*, int);
using Openat2Fn = int (*)(int, const char*, int);

// Resolved in this file's constructor; until then (another library's constructor) the raw call.
OpenatFn g_openat = nullptr;
OpenatFn g_openat64 = nullptr;
Open2Fn g_open_2 = nullptr;
Open2Fn g_open64_2 = nullptr;
Openat2Fn g_openat_2 = nullptr;
Openat2Fn g_openat64_2 = nullptr;

__attribute__((constructor)) void resolve_open_calls() {
  g_openat = reinterpret_cast<OpenatFn>(dlsym(RTLD_NEXT, "openat"));
  g_openat64 = reinterpret_cast<OpenatFn>(dlsym(RTLD_NEXT, "openat64"));
  g_open_2 = reinterpret_cast<Open2Fn>(dlsym(RTLD_NEXT, "__open_2"));
  g_open64_2 = reinterpret_cast<Open2Fn>(dlsym(RTLD_NEXT, "__open64_2"));
  g_openat_2 = reinterpret_cast<Openat2Fn>(dlsym(RTLD_NEXT, "__openat_2"));
  g_openat64_2 = reinterpret_cast<Openat2Fn>(dlsym(RTLD_NEXT, "__openat64_2"));
}

// Descriptors known to be this process's memory file (a hint: checked again before use).
constexpr int kKnownFds = 1 << 16;
uint64_t g_known[kKnownFds / 64];

bool known(int fd) {
  return fd >= 0 && fd < kKnownFds && (__atomic_load_n(&g_known[fd / 64], __ATOMIC_RELAXED) >> (fd % 64)) & 1;
}

void set_known(int fd, bool on) {
  if (fd < 0 || fd >= kKnownFds) return;
  const uint64_t bit = uint64_t(1) << (fd % 64);
  if (on) {
    __atomic_fetch_or(&g_known[fd / 64], bit, __ATOMIC_RELAXED);
  } else if (__atomic_load_n(&g_known[fd / 64], __ATOMIC_RELAXED) & bit) {
    __atomic_fetch_and(&g_known[fd / 64], ~bit, __ATOMIC_RELAXED);
  }
}

// Parses a decimal number at *p; false if there is none.
bool number_at(const char** p, long* v) {
  const char* s = *p;
  long n = 0;
  while (*s >= '0' && *s <= '9') n = n * 10 + (*s++ - '0');
  if (s == *p) return false;
  *p = s;
  *v = n;
  return true;
}

bool starts(const char** p, const char* word) {
  const char* s = *p;
  for (; *word; word++, s++) {
    if (*s != *word) return false;
  }
  *p = s;
  return true;
}

// Whether fd is this process's memory file: the kernel names it /proc/PID/mem or
// /proc/PID/task/TID/mem, with PID ours.
bool own_memory_file(int fd) {
  char link[32] = "/proc/self/fd/";
  char* d = link + 14;
  char digits[12];
  int k = 0;
  for (unsigned v = unsigned(fd); k == 0 || v; v /= 10) digits[k++] = char('0' + v % 10);
  while (k) *d++ = digits[--k];
  *d = 0;
  char target[64];
  const long n = uffdlazy::sys::call6(SYS_readlinkat, AT_FDCWD, reinterpret_cast<long>(link),
                                      reinterpret_cast<long>(target), sizeof target - 1);
  if (n <= 0) return false;
  target[n] = 0;
  const char* p = target;
  long pid = 0, tid = 0;
  if (!starts(&p, "/proc/") || !number_at(&p, &pid) || pid != uffdlazy::sys::getpid()) return false;
  if (starts(&p, "/task/") && !number_at(&p, &tid)) return false;
  return starts(&p, "/mem") && *p == 0;
}

int after_open(int fd, const char* path) {
  if (fd < 0) return fd;
  // Cheap first: only a name ending in "mem" can be the memory file (the kernel's name decides).
  size_t len = 0;
  while (path && path[len]) len++;
  const bool maybe = len >= 3 && path[len - 3] == 'm' && path[len - 2] == 'e' && path[len - 1] == 'm' &&
                     (len == 3 || path[len - 4] == '/');
  const int saved = errno;
  set_known(fd, maybe && own_memory_file(fd));
  errno = saved;
  return fd;
}

// Whether the call's answer (r of n bytes, errno) may have been cut short by a registered page.
bool worth_a_look(int fd, ssize_t r, size_t n) {
  if (r >= 0 && size_t(r) >= n) return false;
  if (r < 0 && errno != EIO) return false;
  if (r >= 0 && (r == 0 || !known(fd))) return false;
  const int saved = errno;
  const bool mine = own_memory_file(fd);
  set_known(fd, mine);
  errno = saved;
  return mine;
}

// Consecutive attempts that make no progress although the page where the kernel stopped is
// registered (another thread dropping it each time): then the kernel's answer stands.
constexpr int kMaxStuck = 64;

// Finishes a transfer the kernel stopped at a registered page. first: the first call's result.
// call(done) makes the call for the bytes from `done` on; where(done) is the address it starts at.
template <class Call, class Where>
ssize_t finish_transfer(ssize_t first, size_t n, Call&& call, Where&& where) {
  size_t done = first > 0 ? size_t(first) : 0;
  int err = first < 0 ? errno : 0;
  int stuck = 0;
  while (done < n && stuck < kMaxStuck) {
    const uintptr_t at = where(done);
    if (!uffdlazy::pager::making_present(at, at + (n - done))) break;
    const ssize_t k = call(done);
    if (k > 0) {
      done += size_t(k);
      stuck = 0;
      continue;
    }
    if (k == 0) break;
    err = errno;
    if (err != EIO) break;
    stuck++;
  }
  if (done) return ssize_t(done);
  errno = err;
  return -1;
}

off64_t position(int fd) {
  const int saved = errno;
  const off64_t pos = __lseek(fd, 0, SEEK_CUR);
  errno = saved;
  return pos;
}

int mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

}  // namespace

namespace uffdlazy::preload {
// io_interposers.cpp: the call, made again when only a checkpoint's signals interrupted it.
ssize_t read_through_checkpoint(int fd, void* buf, size_t n);
ssize_t write_through_checkpoint(int fd, const void* buf, size_t n);
}  // namespace uffdlazy::preload

UFFDLAZY_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  const ssize_t r = uffdlazy::preload::read_through_checkpoint(fd, buf, n);
  if (!worth_a_look(fd, r, n)) return r;
  char* b = static_cast<char*>(buf);
  return finish_transfer(
      r, n, [&](size_t done) { return __read(fd, b + done, n - done); },
      [&](size_t) { return uintptr_t(position(fd)); });
}

UFFDLAZY_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  const ssize_t r = uffdlazy::preload::write_through_checkpoint(fd, buf, n);
  if (!worth_a_look(fd, r, n)) return r;
  const char* b = static_cast<const char*>(buf);
  return finish_transfer(
      r, n, [&](size_t done) { return __write(fd, b + done, n - done); },
      [&](size_t) { return uintptr_t(position(fd)); });
}

UFFDLAZY_EXPORT ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  const ssize_t r = __pread64(fd, buf, n, off);
  if (!worth_a_look(fd, r, n)) return r;
  char* b = static_cast<char*>(buf);
  return finish_transfer(
      r, n, [&](size_t done) { return __pread64(fd, b + done, n - done, off64_t(off + done)); },
      [&](size_t done) { return uintptr_t(off) + done; });
}

UFFDLAZY_EXPORT ssize_t pread(int fd, void* buf, size_t n, off_t off) { return pread64(fd, buf, n, off); }

UFFDLAZY_EXPORT ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  const ssize_t r = __pwrite64(fd, buf, n, off);
  if (!worth_a_look(fd, r, n)) return r;
  const char* b = static_cast<const char*>(buf);
  return finish_transfer(
      r, n, [&](size_t done) { return __pwrite64(fd, b + done, n - done, off64_t(off + done)); },
      [&](size_t done) { return uintptr_t(off) + done; });
}

UFFDLAZY_EXPORT ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }

UFFDLAZY_EXPORT int close(int fd) {
  set_known(fd, false);
  return __close(fd);
}

UFFDLAZY_EXPORT int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = mode_arg(flags, ap);
  va_end(ap);
  return after_open(__open64(path, flags, mode), path);
}

UFFDLAZY_EXPORT int open64(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = mode_arg(flags, ap);
  va_end(ap);
  return after_open(__open64(path, flags, mode), path);
}

namespace {

int raw_openat(int dirfd, const char* path, int flags, int mode) {
  const long r = uffdlazy::sys::openat(dirfd, path, flags | O_LARGEFILE, mode);
  if (uffdlazy::sys::failed(r)) {
    errno = int(-r);
    return -1;
  }
  return int(r);
}

}  // namespace

UFFDLAZY_EXPORT int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = mode_arg(flags, ap);
  va_end(ap);
  return after_open(g_openat ? g_openat(dirfd, path, flags, mode) : raw_openat(dirfd, path, flags, mode), path);
}

UFFDLAZY_EXPORT int openat64(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = mode_arg(flags, ap);
  va_end(ap);
  return after_open(g_openat64 ? g_openat64(dirfd, path, flags, mode) : raw_openat(dirfd, path, flags, mode), path);
}

// The _FORTIFY_SOURCE entry points (open without a mode when the flags are not constant).
UFFDLAZY_EXPORT int __open_2(const char* path, int flags) {
  return after_open(g_open_2 ? g_open_2(path, flags) : raw_openat(AT_FDCWD, path, flags, 0), path);
}

UFFDLAZY_EXPORT int __open64_2(const char* path, int flags) {
  return after_open(g_open64_2 ? g_open64_2(path, flags) : raw_openat(AT_FDCWD, path, flags, 0), path);
}

UFFDLAZY_EXPORT int __openat_2(int dirfd, const char* path, int flags) {
  return after_open(g_openat_2 ? g_openat_2(dirfd, path, flags) : raw_openat(dirfd, path, flags, 0), path);
}

UFFDLAZY_EXPORT int __openat64_2(int dirfd, const char* path, int flags) {
  return after_open(g_openat64_2 ? g_openat64_2(dirfd, path, flags) : raw_openat(dirfd, path, flags, 0), path);
}
