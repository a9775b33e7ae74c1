// `uffdlazy checkpoint` promises exit status 0 only when an image was written. A program that
// ends before its checkpoint was taken (or whose checkpoint was refused, in continue mode) would
// otherwise exit 0 as if it had been saved: its status becomes 2 instead, with one line saying
// why, once its own output is flushed as usual. main() is wrapped through __libc_start_main
// (crt1's _start calls it through the PLT), and exit(), _exit() and _Exit() for programs that call
// them directly. daemon(3) ends its parent with an _exit(0) inside libc, which no interposer
// sees: it is done here the same way (fork, setsid, chdir, /dev/null), its parent ending through
// _exit() above. Without a checkpoint asked for, everything passes through unchanged.
#include <cerrno>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/pager/checkpointing.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using MainFn = int (*)(int, char**, char**);
using StartMainFn = int (*)(MainFn, int, char**, void (*)(), void (*)(), void (*)(), void*);
using ExitFn = void (*)(int);

MainFn g_main = nullptr;

int main_with_checked_status(int argc, char** argv, char** envp) {
  return uffdlazy::pager::checkpoint_exit_status(g_main(argc, argv, envp));
}

}  // namespace

UFFDLAZY_EXPORT int __libc_start_main(MainFn main, int argc, char** argv, void (*init)(), void (*fini)(),
                                      void (*rtld_fini)(), void* stack_end) {
  auto real = reinterpret_cast<StartMainFn>(dlsym(RTLD_NEXT, "__libc_start_main"));
  g_main = main;
  return real(main_with_checked_status, argc, argv, init, fini, rtld_fini, stack_end);
}

UFFDLAZY_EXPORT void _exit(int status) {
  static ExitFn real = nullptr;
  if (!real) real = reinterpret_cast<ExitFn>(dlsym(RTLD_NEXT, "_exit"));
  real(uffdlazy::pager::checkpoint_exit_status(status));
  __builtin_unreachable();
}

UFFDLAZY_EXPORT void _Exit(int status) { _exit(status); }

UFFDLAZY_EXPORT int daemon(int nochdir, int noclose) {
  using DaemonFn = int (*)(int, int);
  static DaemonFn real = nullptr;
  if (!real) real = reinterpret_cast<DaemonFn>(dlsym(RTLD_NEXT, "daemon"));
  if (!uffdlazy::pager::checkpoint_armed_here()) return real(nochdir, noclose);
  switch (fork()) {
    case -1:
      return -1;
    case 0:
      break;
    default:
      _exit(0);
  }
  if (setsid() == -1) return -1;
  if (!nochdir) (void)chdir("/");
  if (!noclose) {
    const int fd = open("/dev/null", O_RDWR);
    struct stat st;
    if (fd == -1 || fstat(fd, &st) != 0) {
      if (fd != -1) close(fd);
      return -1;
    }
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
      close(fd);
      errno = ENODEV;
      return -1;
    }
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2) close(fd);
  }
  return 0;
}

UFFDLAZY_EXPORT void exit(int status) {
  static ExitFn real = nullptr;
  if (!real) real = reinterpret_cast<ExitFn>(dlsym(RTLD_NEXT, "exit"));
  real(uffdlazy::pager::checkpoint_exit_status(status));
  __builtin_unreachable();
}
