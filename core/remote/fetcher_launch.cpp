#include "core/remote/fetcher_launch.h"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <initializer_list>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/decimal.h"
#include "core/base/high_fd.h"
#include "core/base/raw_syscall.h"
#include "core/remote/remote_channel.h"

namespace uffdlazy::remote {

namespace {

// "--name=N" into buf.
char* number_arg(char* buf, const char* name, uint64_t n) {
  size_t i = 0;
  for (; name[i]; i++) buf[i] = name[i];
  buf[i + format_u64(buf + i, n)] = 0;
  return buf;
}

void close_all(RemoteOpen* ro) {
  if (ro->control) sys::munmap(ro->control, ro->control_size);
  for (int* fd : {&ro->view_fd, &ro->control_fd, &ro->bell_fd, &ro->pidfd}) {
    if (*fd >= 0) sys::close(*fd);
    *fd = -1;
  }
  ro->control = nullptr;
}

}  // namespace

bool start_fetcher(const char* location, const char* fetcher, char* const* envp, RemoteOpen* out, LineWriter* err) {
  long v = sys::call6(SYS_memfd_create, reinterpret_cast<long>("uffdlazy-view"), MFD_CLOEXEC);
  long c = sys::call6(SYS_memfd_create, reinterpret_cast<long>("uffdlazy-control"), MFD_CLOEXEC);
  long b = sys::call6(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (v < 0 || c < 0 || b < 0) {
    err->str("cannot make the remote restore's descriptors: ").errno_text(int(-(v < 0 ? v : c < 0 ? c : b)));
    return false;
  }
  out->view_fd = move_fd_high(int(v));
  out->control_fd = move_fd_high(int(c));
  out->bell_fd = move_fd_high(int(b));
  out->control_size = 4096;
  long m = sys::ftruncate(out->control_fd, 4096);
  if (m == 0) m = mmap_aside(4096, PROT_READ | PROT_WRITE, MAP_SHARED, out->control_fd, 0);
  if (sys::failed(m)) {
    err->str("cannot map the remote restore's control block: ").errno_text(int(-m));
    close_all(out);
    return false;
  }
  out->control = reinterpret_cast<void*>(m);
  ChannelHeader* h = static_cast<ChannelHeader*>(out->control);
  h->magic = kChannelMagic;
  h->version = kChannelVersion;
  h->state = kOpening;

  static char a_view[32], a_control[32], a_bell[32], a_parent[32];
  const long parent = sys::getpid();
  char* argv[] = {const_cast<char*>(fetcher), number_arg(a_view, "--view=", uint64_t(out->view_fd)),
                  number_arg(a_control, "--control=", uint64_t(out->control_fd)),
                  number_arg(a_bell, "--bell=", uint64_t(out->bell_fd)),
                  number_arg(a_parent, "--parent=", uint64_t(parent)), const_cast<char*>(location), nullptr};
  // The program's environment (S3 settings, UFFDLAZY_FETCH_TIMEOUT, the cache variables), without
  // LD_PRELOAD: a fetcher under the shim would start a fetcher of its own, and so on.
  static char* env[4096];
  static char disable[] = "UFFDLAZY_DISABLE=1";
  size_t n_env = 0;
  for (char* const* e = envp; e && *e && n_env < sizeof env / sizeof env[0] - 2; e++) {
    const char* p = *e;
    const char* pre = "LD_PRELOAD=";
    size_t i = 0;
    while (pre[i] && p[i] == pre[i]) i++;
    if (!pre[i]) continue;
    env[n_env++] = *e;
  }
  env[n_env++] = disable;
  env[n_env] = nullptr;
  sigset_t all, old;
  sigfillset(&all);
  sys::sigprocmask(SIG_SETMASK, &all, &old);
  // Two bare clones (no exit signal, as for a capture): the first child starts the fetcher and
  // ends at once, so the fetcher belongs to the nearest subreaper (or init), never to the
  // program. One clone and an execve would not do: execve gives the child back the exit signal
  // SIGCHLD (the kernel's de_thread), after which the program's wait(2) could reap it and would
  // be told when it ends. The fetcher follows the program by a pidfd of it (fetch_main.cpp).
  const long middle = sys::call6(SYS_clone, 0, 0, 0, 0, 0);
  if (middle == 0) {
    const long pid = sys::call6(SYS_clone, 0, 0, 0, 0, 0);
    if (pid == 0) {
      for (int fd : {out->view_fd, out->control_fd, out->bell_fd}) sys::call6(SYS_fcntl, fd, F_SETFD, 0);
      sigset_t none;
      sigemptyset(&none);
      sys::sigprocmask(SIG_SETMASK, &none, nullptr);
      const long e = sys::call6(SYS_execve, reinterpret_cast<long>(fetcher), reinterpret_cast<long>(argv),
                                reinterpret_cast<long>(env));
      LineWriter w;
      w.str("cannot start the fetcher ").str(fetcher).str(": ").errno_text(int(-e));
      const size_t n = w.size() < sizeof h->message - 1 ? w.size() : sizeof h->message - 1;
      __builtin_memcpy(h->message, w.data(), n);
      h->message[n] = 0;
      __atomic_store_n(&h->state, uint32_t(kRefused), __ATOMIC_RELEASE);
      for (;;) sys::exit_group(127);
    }
    __atomic_store_n(&h->fetcher_pid, uint32_t(pid > 0 ? pid : 0), __ATOMIC_RELEASE);
    for (;;) sys::exit_group(pid > 0 ? 0 : 1);
  }
  sys::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (middle < 0) {
    err->str("cannot start the fetcher: ").errno_text(int(-middle));
    close_all(out);
    return false;
  }
  int middle_status = 0;
  long w;
  do {
    w = sys::call6(SYS_wait4, middle, reinterpret_cast<long>(&middle_status), __WALL, 0);
  } while (w == -EINTR);
  const long pid = long(__atomic_load_n(&h->fetcher_pid, __ATOMIC_ACQUIRE));
  if (pid <= 0) {
    err->str("cannot start the fetcher: clone failed");
    close_all(out);
    return false;
  }
  out->fetcher_pid = pid;
  const long pidfd = sys::call6(SYS_pidfd_open, pid, 0);
  out->pidfd = pidfd >= 0 ? move_fd_high(int(pidfd)) : -1;
  // Wait for the object to open: the doorbell rings, or the fetcher ends.
  for (;;) {
    const uint32_t st = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
    if (st == kReady) break;
    if (st == kRefused || st == kBroken) {
      err->str(h->message);
      stop_fetcher(out);
      return false;
    }
    pollfd p[2] = {{out->bell_fd, POLLIN, 0}, {out->pidfd, POLLIN, 0}};
    const long r = sys::call6(SYS_ppoll, reinterpret_cast<long>(p), out->pidfd >= 0 ? 2 : 1, 0, 0, 8);
    if (r < 0 && r != -EINTR) {
      err->str("waiting for the fetcher failed: ").errno_text(int(-r));
      stop_fetcher(out);
      return false;
    }
    uint64_t ignored;
    sys::read(out->bell_fd, &ignored, sizeof ignored);
    if ((p[1].revents & POLLIN) && __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) == kOpening) {
      err->str("the fetcher (").str(fetcher).str(") ended before the object was open");
      stop_fetcher(out);
      return false;
    }
  }
  // The fetcher sized the control block for the object: map all of it.
  const uint64_t size = h->control_size;
  long full = mmap_aside(size, PROT_READ | PROT_WRITE, MAP_SHARED, out->control_fd, 0);
  if (sys::failed(full)) {
    err->str("cannot map the remote restore's control block: ").errno_text(int(-full));
    stop_fetcher(out);
    return false;
  }
  sys::munmap(out->control, 4096);
  out->control = reinterpret_cast<void*>(full);
  out->control_size = size;
  return true;
}

void stop_fetcher(RemoteOpen* ro) {
  // Not our child (see start_fetcher): nothing to reap.
  if (ro->fetcher_pid > 0) sys::kill(ro->fetcher_pid, SIGKILL);
  ro->fetcher_pid = -1;
  close_all(ro);
}

}  // namespace uffdlazy::remote
