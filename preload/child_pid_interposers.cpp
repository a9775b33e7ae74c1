// The pids of the children a resume made again (zombies, so far) as the program knows them: wait,
// waitpid, wait3, wait4, waitid and kill take and give back the pid the program got from fork
// (core/checkpoint/child_pids.h). Without such children each calls libc's own at once.
#include <cerrno>
#include <csignal>
#include <dlfcn.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "core/checkpoint/child_pids.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using Wait4Fn = pid_t (*)(pid_t, int*, int, struct rusage*);
using WaitidFn = int (*)(idtype_t, id_t, siginfo_t*, int);
using KillFn = int (*)(pid_t, int);

// Resolved in the constructor (child_pid_interposers_init); a call before that resolves it then.
Wait4Fn g_wait4 = nullptr;
WaitidFn g_waitid = nullptr;
KillFn g_kill = nullptr;

template <class Fn>
Fn next(Fn* slot, const char* name) {
  if (!*slot) *slot = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
  return *slot;
}

// A wait that returned `pid` (the kernel's) for the program: the pid it knows, and a child made
// again that was reaped frees its slot.
pid_t give_back(pid_t pid, int options) {
  if (pid <= 0) return pid;
  const pid_t known = uffdlazy::ckpt::known_child_pid(pid);
  if (known != pid && !(options & WNOWAIT)) uffdlazy::ckpt::child_pid_reaped(known);
  return known;
}

pid_t wait4_known(pid_t pid, int* status, int options, struct rusage* usage) {
  const Wait4Fn real = next(&g_wait4, "wait4");
  if (!uffdlazy::ckpt::child_pids_in_use()) return real(pid, status, options, usage);
  const pid_t r = real(uffdlazy::ckpt::real_child_pid(pid), status, options, usage);
  const int saved = errno;
  const pid_t known = give_back(r, options);
  errno = saved;
  return known;
}

}  // namespace

namespace uffdlazy::preload {

void child_pid_interposers_init() {
  next(&g_wait4, "wait4");
  next(&g_waitid, "waitid");
  next(&g_kill, "kill");
}

}  // namespace uffdlazy::preload

UFFDLAZY_EXPORT pid_t wait4(pid_t pid, int* status, int options, struct rusage* usage) {
  return wait4_known(pid, status, options, usage);
}

UFFDLAZY_EXPORT pid_t waitpid(pid_t pid, int* status, int options) { return wait4_known(pid, status, options, nullptr); }

UFFDLAZY_EXPORT pid_t wait(int* status) { return wait4_known(-1, status, 0, nullptr); }

UFFDLAZY_EXPORT pid_t wait3(int* status, int options, struct rusage* usage) {
  return wait4_known(-1, status, options, usage);
}

UFFDLAZY_EXPORT int waitid(idtype_t type, id_t id, siginfo_t* info, int options) {
  const WaitidFn real = next(&g_waitid, "waitid");
  if (!uffdlazy::ckpt::child_pids_in_use()) return real(type, id, info, options);
  if (type == P_PID) id = id_t(uffdlazy::ckpt::real_child_pid(pid_t(id)));
  const int r = real(type, id, info, options);
  const int saved = errno;
  if (r == 0 && info && info->si_pid > 0) {
    info->si_pid = give_back(info->si_pid, (options & WNOWAIT) ? WNOWAIT : 0);
  }
  errno = saved;
  return r;
}

UFFDLAZY_EXPORT int kill(pid_t pid, int sig) {
  const KillFn real = next(&g_kill, "kill");
  if (!uffdlazy::ckpt::child_pids_in_use()) return real(pid, sig);
  return real(uffdlazy::ckpt::real_child_pid(pid), sig);
}
