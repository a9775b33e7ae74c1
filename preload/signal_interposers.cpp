// While a checkpoint is armed (UFFDLAZY_CHECKPOINT), its stop signal belongs to the shim
// (core/checkpoint/thread_stop.h): the program can neither install a handler for it nor block it,
// by any of the libc calls that take a handler or a mask. A call that would take it over fails
// with EINVAL; a mask that would block it is used without it. Threads that block it through raw
// system calls are caught by the checkpoint's timeout instead.
//
// A stop interrupts sleeps (nanosleep, clock_nanosleep, sleep, usleep return early with EINTR to
// a handled signal even with SA_RESTART). When the interruption was a stop, the sleep goes on for
// the time that was left, so the program never sees it.
//
// When no checkpoint is armed every call goes straight through.
#include <cerrno>
#include <csignal>
#include <ctime>
#include <dlfcn.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/checkpoint/thread_stop.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using uffdlazy::ckpt::kStopSignal;

template <class Fn>
Fn next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

// Each real function, resolved in the constructor (or at first use, for calls that come earlier).
#define REAL(name, type)                                      \
  type real_##name() {                                        \
    static type fn = nullptr;                                 \
    if (!fn) fn = next<type>(#name);                          \
    return fn;                                                \
  }

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
using SignalFn = sighandler_t (*)(int, sighandler_t);
using SigmaskFn = int (*)(int, const sigset_t*, sigset_t*);
using SigsuspendFn = int (*)(const sigset_t*);
using SigwaitFn = int (*)(const sigset_t*, int*);
using SigwaitinfoFn = int (*)(const sigset_t*, siginfo_t*);
using SigtimedwaitFn = int (*)(const sigset_t*, siginfo_t*, const timespec*);
using SignalfdFn = int (*)(int, const sigset_t*, int);
using PpollFn = int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*);
using PselectFn = int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
using EpollPwaitFn = int (*)(int, epoll_event*, int, int, const sigset_t*);
using NanosleepFn = int (*)(const timespec*, timespec*);
using ClockNanosleepFn = int (*)(clockid_t, int, const timespec*, timespec*);

REAL(sigaction, SigactionFn)
REAL(signal, SignalFn)
REAL(sigprocmask, SigmaskFn)
REAL(pthread_sigmask, SigmaskFn)
REAL(sigsuspend, SigsuspendFn)
REAL(sigwait, SigwaitFn)
REAL(sigwaitinfo, SigwaitinfoFn)
REAL(sigtimedwait, SigtimedwaitFn)
REAL(signalfd, SignalfdFn)
REAL(ppoll, PpollFn)
REAL(pselect, PselectFn)
REAL(epoll_pwait, EpollPwaitFn)
REAL(nanosleep, NanosleepFn)
REAL(clock_nanosleep, ClockNanosleepFn)

bool reserved() { return uffdlazy::ckpt::stop_signal_reserved(); }

// `set` without the stop signal, in `scratch` when it had to change; nullptr stays nullptr.
const sigset_t* without_stop(const sigset_t* set, sigset_t* scratch) {
  if (!set || !reserved() || !sigismember(set, kStopSignal)) return set;
  *scratch = *set;
  sigdelset(scratch, kStopSignal);
  return scratch;
}

}  // namespace

namespace uffdlazy::preload {

void signal_interposers_init() {
  real_sigaction();
  real_signal();
  real_sigprocmask();
  real_pthread_sigmask();
  real_sigsuspend();
  real_nanosleep();
  real_clock_nanosleep();
}

}  // namespace uffdlazy::preload

UFFDLAZY_EXPORT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (reserved() && sig == kStopSignal && act) {
    errno = EINVAL;
    return -1;
  }
  if (act && reserved() && sigismember(&act->sa_mask, kStopSignal)) {
    struct sigaction copy = *act;
    sigdelset(&copy.sa_mask, kStopSignal);
    return real_sigaction()(sig, &copy, old);
  }
  return real_sigaction()(sig, act, old);
}

UFFDLAZY_EXPORT sighandler_t signal(int sig, sighandler_t handler) {
  if (reserved() && sig == kStopSignal) {
    errno = EINVAL;
    return SIG_ERR;
  }
  return real_signal()(sig, handler);
}

UFFDLAZY_EXPORT int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  sigset_t scratch;
  return real_sigprocmask()(how, how == SIG_UNBLOCK ? set : without_stop(set, &scratch), old);
}

UFFDLAZY_EXPORT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  sigset_t scratch;
  return real_pthread_sigmask()(how, how == SIG_UNBLOCK ? set : without_stop(set, &scratch), old);
}

UFFDLAZY_EXPORT int sigsuspend(const sigset_t* mask) {
  sigset_t scratch;
  return real_sigsuspend()(without_stop(mask, &scratch));
}

UFFDLAZY_EXPORT int sigwait(const sigset_t* set, int* sig) {
  sigset_t scratch;
  return real_sigwait()(without_stop(set, &scratch), sig);
}

UFFDLAZY_EXPORT int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  sigset_t scratch;
  return real_sigwaitinfo()(without_stop(set, &scratch), info);
}

UFFDLAZY_EXPORT int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  sigset_t scratch;
  return real_sigtimedwait()(without_stop(set, &scratch), info, timeout);
}

UFFDLAZY_EXPORT int signalfd(int fd, const sigset_t* mask, int flags) {
  sigset_t scratch;
  return real_signalfd()(fd, without_stop(mask, &scratch), flags);
}

UFFDLAZY_EXPORT int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  sigset_t scratch;
  return real_ppoll()(fds, n, timeout, without_stop(mask, &scratch));
}

UFFDLAZY_EXPORT int pselect(int n, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* mask) {
  sigset_t scratch;
  return real_pselect()(n, r, w, e, timeout, without_stop(mask, &scratch));
}

UFFDLAZY_EXPORT int epoll_pwait(int epfd, epoll_event* events, int max, int timeout, const sigset_t* mask) {
  sigset_t scratch;
  return real_epoll_pwait()(epfd, events, max, timeout, without_stop(mask, &scratch));
}

UFFDLAZY_EXPORT int clock_nanosleep(clockid_t clock, int flags, const timespec* request, timespec* remain) {
  for (;;) {
    const uint32_t stops = uffdlazy::ckpt::stops_of_this_thread();
    timespec left;
    // The time left is needed to go on after a stop, even when the caller did not ask for it.
    const int r = real_clock_nanosleep()(clock, flags, request, remain ? remain : &left);
    if (r != EINTR || uffdlazy::ckpt::stops_of_this_thread() == stops) return r;
    // Interrupted by a checkpoint, not by the program's own signal: sleep on. An absolute
    // deadline stays as it is; a relative one is what was left.
    if (!(flags & TIMER_ABSTIME)) {
      left = remain ? *remain : left;
      request = &left;
    }
  }
}

UFFDLAZY_EXPORT int nanosleep(const timespec* request, timespec* remain) {
  const int r = clock_nanosleep(CLOCK_REALTIME, 0, request, remain);
  if (r == 0) return 0;
  errno = r;
  return -1;
}

UFFDLAZY_EXPORT unsigned int sleep(unsigned int seconds) {
  timespec ts = {time_t(seconds), 0};
  if (nanosleep(&ts, &ts) == 0) return 0;
  return unsigned(ts.tv_sec) + (ts.tv_nsec >= 500000000 ? 1 : 0);
}

UFFDLAZY_EXPORT int usleep(useconds_t usec) {
  timespec ts = {time_t(usec / 1000000), long(usec % 1000000) * 1000};
  return nanosleep(&ts, nullptr);
}
