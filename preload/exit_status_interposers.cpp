// `uffdlazy checkpoint` promises exit status 0 only when an image was written. A program that
// ends before its checkpoint was taken (or whose checkpoint was refused, in continue mode) would
// otherwise exit 0 as if it had been saved: its status becomes 2 instead, with one line saying
// why, once its own output is flushed as usual. main() is wrapped through __libc_start_main
// (crt1's _start calls it through the PLT), and exit() for programs that call it directly.
// Without a checkpoint asked for, both pass the status through unchanged.
#include <dlfcn.h>

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

UFFDLAZY_EXPORT void exit(int status) {
  static ExitFn real = nullptr;
  if (!real) real = reinterpret_cast<ExitFn>(dlsym(RTLD_NEXT, "exit"));
  real(uffdlazy::pager::checkpoint_exit_status(status));
  __builtin_unreachable();
}
