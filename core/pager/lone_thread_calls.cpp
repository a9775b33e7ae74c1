// Stepping aside for a system call that needs a single-threaded process (lazy_pager.h).
//
// The kernel refuses unshare(CLONE_NEWUSER) (and CLONE_THREAD, CLONE_SIGHAND, CLONE_VM) unless the
// caller is alone in its thread group, setns into a user namespace likewise and unless no other
// task shares its filesystem information, setns into a mount namespace unless no other task shares
// it, and setns into a time namespace unless no other task shares its memory (kernel/fork.c
// check_unshare_flags, kernel/user_namespace.c userns_install, fs/namespace.c mntns_install,
// kernel/time/namespace.c timens_install). The shim's threads (the monitor, its copy helper, the
// end watch) are tasks of the process that share all of it: for such a call they end, and start
// again once it has returned.
//
// Nothing is lost meanwhile. The userfaultfd belongs to the memory, not to a thread: it and its
// registrations stay, and a fault or event that arrives while no monitor runs waits in the
// kernel's queue for the next one, which takes the same descriptor, region table and page source
// (a snapshot keeps being served lazily: nothing owed is filled first, nothing dropped). Only the
// main thread can ever be alone, and only when glibc counts no other thread of the program; the
// descriptors the new monitor takes from the process's table (the userfaultfd, the snapshot file)
// must still be the shim's, else the shim stays as it is (and the call fails as it did).
#include <cerrno>
#include <csignal>

#include "core/base/hidden_thread.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

// Which of the shim's threads stepped aside, and the caller's signal mask (only the main thread
// gets here, with every signal blocked: one call at a time).
struct SteppedAside {
  bool monitor = false;
  bool watch = false;
  uint64_t mask = 0;
};
constinit SteppedAside g_aside;

// The descriptors a monitor started again takes from the process's table are still the shim's.
bool descriptors_still_ours() {
  if (g.descriptor_lost.load(std::memory_order_relaxed) || !g.uffd.still_open()) return false;
  const int source = g.monitor.source_descriptor();
  return source < 0 || (source == g.source_file.fd && g.source_file.still_valid());
}

}  // namespace

bool before_lone_thread_call() {
  if (!g.active.load(std::memory_order_acquire) || sys::getpid() != g.owner_pid) return false;
  if (sys::gettid() != sys::getpid()) return false;  // only the main thread is ever alone
  // Other threads of the program: the kernel refuses the call whatever the shim does.
  if (libc_thread_count() > 1) return false;
  const bool monitor = g.monitor.running();
  const bool watch = g.end_watch.running();
  if (!monitor && !watch) return false;
  if (monitor && !descriptors_still_ours()) return false;
  // No signal handler may run until the threads are back: one that touched a page not yet served
  // would wait for a monitor only this thread can start.
  uint64_t all = ~uint64_t(0);
  sys::sigprocmask(SIG_SETMASK, &all, &g_aside.mask);
  g_aside.watch = watch;
  g_aside.monitor = monitor;
  if (watch) g.end_watch.stop();
  if (monitor) g.monitor.stop();
  return true;
}

void after_lone_thread_call() {
  if (g_aside.monitor && !g.monitor.start()) {
    // Nothing would serve the registered ranges: hand them back to the kernel (or, with pages
    // still owed, stop the process rather than let them read as zeros).
    g.monitor.give_up("could not start the monitor again after a call that needs a single-threaded process", EAGAIN);
  }
  if (g_aside.watch) g.end_watch.start(program_ended, g.summary.fd);
  g_aside.monitor = g_aside.watch = false;
  sys::sigprocmask(SIG_SETMASK, &g_aside.mask, nullptr);
}

}  // namespace uffdlazy::pager
