#include "core/base/high_fd.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

long high_fd_floor() {
  rlimit lim = {};
  sys::call6(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, reinterpret_cast<long>(&lim));
  // Near the top of the usual 1024 (a larger limit gains nothing and would make the kernel grow
  // the descriptor table); below a small limit, three quarters of it.
  return lim.rlim_cur >= 1024 ? 1000 : long(lim.rlim_cur * 3 / 4);
}

int move_fd_high(int fd) {
  const long floor = high_fd_floor();
  if (floor <= fd) return fd;
  long high = sys::call6(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor);
  if (high < 0) return fd;
  sys::close(fd);
  return int(high);
}

bool FdIdentity::take(int descriptor) {
  struct stat st;
  if (descriptor < 0 || sys::fstat(descriptor, &st) != 0) return false;
  fd = descriptor;
  dev = st.st_dev;
  ino = st.st_ino;
  return true;
}

bool FdIdentity::still_valid() const {
  struct stat st;
  return fd >= 0 && sys::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

}  // namespace uffdlazy
