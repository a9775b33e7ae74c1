#include "core/base/program_stderr.h"

#include "core/base/raw_syscall.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace uffdlazy {

void emit_to_program_stderr(LineWriter& w) {
  long pidfd = sys::call6(SYS_pidfd_open, sys::getpid(), 0);
  if (pidfd < 0) {
    w.emit(2);  // an old kernel: the caller shares the program's table anyway
    return;
  }
  long fd = sys::call6(SYS_pidfd_getfd, pidfd, 2, 0);
  sys::close(int(pidfd));
  if (fd < 0) return;
  w.emit(int(fd));
  sys::close(int(fd));
}

}  // namespace uffdlazy
