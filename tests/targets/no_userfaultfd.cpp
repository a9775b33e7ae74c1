// A launcher for the fail-open tests: `no_userfaultfd program [args...]` runs program in a
// process where userfaultfd cannot be had. A seccomp filter makes userfaultfd(2) (every flag,
// including UFFD_USER_MODE_ONLY) and ioctl(fd, USERFAULTFD_IOC_NEW, ...) on /dev/userfaultfd fail
// with EPERM; every other system call, every other ioctl, is untouched (x32-ABI calls, which no
// program here makes, are all refused with EPERM rather than decoded). The filter is inherited
// across execve and fork, so the program and its children all see a kernel without userfaultfd,
// exactly as in a container whose seccomp profile denies it (Docker's default does).
//
// Exit status: the program's, or 126 if the filter cannot be installed, 127 if program cannot be run.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "tests/targets/deny_userfaultfd.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: no_userfaultfd program [args...]\n");
    return 2;
  }
  if (deny_userfaultfd::deny() != 0) return 126;
  execvp(argv[1], argv + 1);
  int err = errno;
  std::fprintf(stderr, "no_userfaultfd: cannot run '%s': %s\n", argv[1], std::strerror(err));
  return err == ENOENT ? 127 : 126;
}
