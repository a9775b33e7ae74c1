// What a checkpoint cannot read back from the kernel without privilege, noted as the program
// does it: the path of each inotify watch (core/checkpoint/inotify_paths.h). Only while a
// checkpoint is armed; otherwise the calls go straight through.
#include <dlfcn.h>
#include <sys/inotify.h>

#include "core/checkpoint/inotify_paths.h"
#include "core/checkpoint/thread_stop.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using AddWatchFn = int (*)(int, const char*, uint32_t);
using RmWatchFn = int (*)(int, int);

template <class Fn>
Fn real(const char* name) {
  static Fn fn = nullptr;
  if (!fn) fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
  return fn;
}

}  // namespace

UFFDLAZY_EXPORT int inotify_add_watch(int fd, const char* path, uint32_t mask) {
  const int wd = real<AddWatchFn>("inotify_add_watch")(fd, path, mask);
  if (wd > 0 && path && uffdlazy::ckpt::stop_signal_reserved()) uffdlazy::ckpt::note_inotify_watch(fd, wd, path);
  return wd;
}

UFFDLAZY_EXPORT int inotify_rm_watch(int fd, int wd) {
  const int r = real<RmWatchFn>("inotify_rm_watch")(fd, wd);
  if (r == 0 && uffdlazy::ckpt::stop_signal_reserved()) uffdlazy::ckpt::forget_inotify_watch(fd, wd);
  return r;
}
