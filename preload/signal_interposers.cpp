// While a checkpoint is armed (UFFDLAZY_CHECKPOINT) the program must not see it, in its signal
// state or in its blocking calls.
//
// The stop signal (core/checkpoint/thread_stop.h) belongs to the shim: the program can neither
// install a handler for it nor block it, by any of the libc calls that take a handler or a mask.
// A call that would take it over fails with EINVAL; a mask that would block it is used without
// it. Threads that block it through raw system calls are caught by the checkpoint's timeout.
//
// The trigger signal (--at signal=NAME) is the shim's too, as long as the program does not want it:
// the program may block it (the shim's capture thread takes it then), set it to SIG_DFL or SIG_IGN
// (which it then reads back, while the shim keeps its handler). If the program installs a handler
// of its own, or waits for it (sigwait*, signalfd), the shim gives it up and says so at once
// (core/pager/checkpointing.h: the checkpoint then ends with status 4).
//
// Either signal may land on a program thread blocked in a system call. Calls the kernel restarts
// (SA_RESTART: read, write, wait, accept, recv, futex waits behind pthread_cond_wait, sem_wait,
// pthread_join, ...) need nothing. Those that fail with EINTR whatever the flags (pause,
// sigsuspend, sigwaitinfo, sigtimedwait, poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
// epoll_pwait2, nanosleep, clock_nanosleep, sleep, usleep, sem_timedwait, sem_clockwait) are
// called again here, with the time they had left (an absolute deadline stays as it is; select's
// timeout is the one Linux updated), when the only signals delivered to the thread meanwhile were
// the shim's (preload/call_again.h; socket calls on sockets with timeouts, SysV IPC and
// io_getevents: io_interposers.cpp). To know that, the program's own handlers are wrapped while a
// checkpoint is armed: the wrapper counts each delivery per thread, then calls the program's
// handler with the same flags and mask; sigaction() reads the program's handler back.
//
// Every real function is looked up once (the shim's constructor, or the first call of any of
// these, whichever comes first: never in a signal handler, since a handler must be installed
// through sigaction first). When no checkpoint is armed every call goes straight through.
#include <cerrno>
#include <csignal>
#include <ctime>
#include <dlfcn.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>

#include "core/base/shim_signals.h"
#include "core/checkpoint/thread_stop.h"
#include "core/pager/capture_trigger.h"
#include "core/pager/checkpointing.h"
#include "preload/call_again.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using uffdlazy::ckpt::kStopSignal;

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
using SignalFn = sighandler_t (*)(int, sighandler_t);
using SigmaskFn = int (*)(int, const sigset_t*, sigset_t*);
using PauseFn = int (*)();
using SigsuspendFn = int (*)(const sigset_t*);
using SigwaitFn = int (*)(const sigset_t*, int*);
using SigwaitinfoFn = int (*)(const sigset_t*, siginfo_t*);
using SigtimedwaitFn = int (*)(const sigset_t*, siginfo_t*, const timespec*);
using SignalfdFn = int (*)(int, const sigset_t*, int);
using PollFn = int (*)(pollfd*, nfds_t, int);
using PpollFn = int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*);
using SelectFn = int (*)(int, fd_set*, fd_set*, fd_set*, timeval*);
using PselectFn = int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
using EpollWaitFn = int (*)(int, epoll_event*, int, int);
using EpollPwaitFn = int (*)(int, epoll_event*, int, int, const sigset_t*);
using EpollPwait2Fn = int (*)(int, epoll_event*, int, const timespec*, const sigset_t*);
using ClockNanosleepFn = int (*)(clockid_t, int, const timespec*, timespec*);
using SemTimedwaitFn = int (*)(sem_t*, const timespec*);
using SemClockwaitFn = int (*)(sem_t*, clockid_t, const timespec*);

struct Real {
  SigactionFn sigaction;
  SignalFn signal, bsd_signal, sysv_signal, sigset;
  SigmaskFn sigprocmask, pthread_sigmask;
  PauseFn pause;
  SigsuspendFn sigsuspend;
  SigwaitFn sigwait;
  SigwaitinfoFn sigwaitinfo;
  SigtimedwaitFn sigtimedwait;
  SignalfdFn signalfd;
  PollFn poll;
  PpollFn ppoll;
  SelectFn select;
  PselectFn pselect;
  EpollWaitFn epoll_wait;
  EpollPwaitFn epoll_pwait;
  EpollPwait2Fn epoll_pwait2;
  ClockNanosleepFn clock_nanosleep;
  SemTimedwaitFn sem_timedwait;
  SemClockwaitFn sem_clockwait;
};
constinit Real g_real = {};
constinit std::atomic<bool> g_resolved{false};

template <class Fn>
void find(Fn* out, const char* name) {
  *out = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

const Real& real() {
  if (!g_resolved.load(std::memory_order_acquire)) {
    Real r = {};
    find(&r.sigaction, "sigaction");
    find(&r.signal, "signal");
    find(&r.bsd_signal, "bsd_signal");
    find(&r.sysv_signal, "sysv_signal");
    find(&r.sigset, "sigset");
    find(&r.sigprocmask, "sigprocmask");
    find(&r.pthread_sigmask, "pthread_sigmask");
    find(&r.pause, "pause");
    find(&r.sigsuspend, "sigsuspend");
    find(&r.sigwait, "sigwait");
    find(&r.sigwaitinfo, "sigwaitinfo");
    find(&r.sigtimedwait, "sigtimedwait");
    find(&r.signalfd, "signalfd");
    find(&r.poll, "poll");
    find(&r.ppoll, "ppoll");
    find(&r.select, "select");
    find(&r.pselect, "pselect");
    find(&r.epoll_wait, "epoll_wait");
    find(&r.epoll_pwait, "epoll_pwait");
    find(&r.epoll_pwait2, "epoll_pwait2");
    find(&r.clock_nanosleep, "clock_nanosleep");
    find(&r.sem_timedwait, "sem_timedwait");
    find(&r.sem_clockwait, "sem_clockwait");
    g_real = r;
    g_resolved.store(true, std::memory_order_release);
  }
  return g_real;
}

bool reserved() { return uffdlazy::ckpt::stop_signal_reserved(); }
int trigger() { return reserved() ? uffdlazy::pager::checkpoint_trigger_signal() : 0; }

// `set` without the stop signal, in `scratch` when it had to change; nullptr stays nullptr.
const sigset_t* without_stop(const sigset_t* set, sigset_t* scratch) {
  if (!set || !reserved() || !sigismember(set, kStopSignal)) return set;
  *scratch = *set;
  sigdelset(scratch, kStopSignal);
  return scratch;
}

// --- The program's handlers, wrapped: deliveries counted per thread. ---

constexpr int kSignals = 65;
struct Handler {
  std::atomic<uintptr_t> fn{0};
  std::atomic<bool> siginfo{false};
};
constinit Handler g_handlers[kSignals];
__thread uint32_t t_program_signals __attribute__((tls_model("initial-exec"))) = 0;

void counting_handler(int sig, siginfo_t* info, void* context) {
  t_program_signals = t_program_signals + 1;
  const Handler& h = g_handlers[sig];
  const uintptr_t fn = h.fn.load(std::memory_order_acquire);
  if (h.siginfo.load(std::memory_order_relaxed)) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, info, context);
  } else {
    reinterpret_cast<void (*)(int)>(fn)(sig);
  }
}

sighandler_t wrapper() { return reinterpret_cast<sighandler_t>(reinterpret_cast<uintptr_t>(&counting_handler)); }

bool is_function(sighandler_t h) { return h != SIG_DFL && h != SIG_IGN && h != SIG_ERR && h != SIG_HOLD; }
bool wrappable(int sig) { return reserved() && sig > 0 && sig < kSignals; }

// What the kernel says back, with our wrapper replaced by the program's handler it stands for.
void unwrap(struct sigaction* old, uintptr_t previous) {
  if (old && old->sa_handler == wrapper()) {
    old->sa_handler = reinterpret_cast<sighandler_t>(previous);
  }
}

// signal(), bsd_signal(), sysv_signal(), sigset(): glibc builds the action itself (flags, mask),
// so the wrapper goes through the real call in the program's handler's place.
sighandler_t set_handler(SignalFn fn, int sig, sighandler_t handler, const char* name) {
  if (reserved() && sig == kStopSignal) {
    errno = EINVAL;
    return SIG_ERR;
  }
  if (sig == trigger() && sig) {
    struct sigaction* view = uffdlazy::capture_signal_view();
    const sighandler_t before = view->sa_handler;
    if (handler == SIG_DFL || handler == SIG_IGN) {
      view->sa_handler = handler;
      return before;
    }
    if (handler != SIG_ERR && handler != SIG_HOLD) {
      uffdlazy::pager::program_takes_trigger(name);
      // Our own handler is still in place until the program's is.
    }
  }
  if (!wrappable(sig) || !is_function(handler)) {
    const uintptr_t previous = wrappable(sig) ? g_handlers[sig].fn.load(std::memory_order_acquire) : 0;
    sighandler_t r = fn(sig, handler);
    return previous && r == wrapper() ? reinterpret_cast<sighandler_t>(previous) : r;
  }
  const uintptr_t previous = g_handlers[sig].fn.exchange(reinterpret_cast<uintptr_t>(handler), std::memory_order_acq_rel);
  g_handlers[sig].siginfo.store(false, std::memory_order_release);
  sighandler_t r = fn(sig, wrapper());
  if (r == SIG_ERR) {
    g_handlers[sig].fn.store(previous, std::memory_order_release);
    return r;
  }
  return r == wrapper() ? reinterpret_cast<sighandler_t>(previous) : r;
}

// The trigger signal is asked for by a call that waits for signals: the program wants it.
void check_wait_set(const sigset_t* set, const char* name) {
  const int t = trigger();
  if (t && set && sigismember(set, t)) uffdlazy::pager::program_takes_trigger(name);
}

}  // namespace

namespace uffdlazy::preload {

void signal_interposers_init() { real(); }

uint32_t program_signals_of_this_thread() { return t_program_signals; }

}  // namespace uffdlazy::preload

using uffdlazy::preload::Deadline;
using uffdlazy::preload::until_done;
using uffdlazy::preload::until_done_within;
using uffdlazy::preload::Watch;

UFFDLAZY_EXPORT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (reserved() && sig == kStopSignal && act) {
    errno = EINVAL;
    return -1;
  }
  const int t = trigger();
  if (t && sig == t) {
    struct sigaction* view = uffdlazy::capture_signal_view();
    if (!act || act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN) {
      if (old) *old = *view;
      if (act) *view = *act;
      return 0;
    }
    const struct sigaction before = *view;
    uffdlazy::pager::program_takes_trigger("sigaction");
    const int r = sigaction(sig, act, nullptr);
    if (r == 0 && old) *old = before;
    return r;
  }
  struct sigaction copy;
  if (act && reserved() && sigismember(&act->sa_mask, kStopSignal)) {
    copy = *act;
    sigdelset(&copy.sa_mask, kStopSignal);
    act = &copy;
  }
  if (!wrappable(sig)) return real().sigaction(sig, act, old);
  const uintptr_t previous = g_handlers[sig].fn.load(std::memory_order_acquire);
  if (!act || !is_function(act->sa_handler)) {
    const int r = real().sigaction(sig, act, old);
    if (r == 0) unwrap(old, previous);
    return r;
  }
  if (act != &copy) copy = *act;
  g_handlers[sig].fn.store(reinterpret_cast<uintptr_t>(act->sa_handler), std::memory_order_release);
  g_handlers[sig].siginfo.store(act->sa_flags & SA_SIGINFO, std::memory_order_release);
  // The program's flags as they are: the kernel passes the wrapper (signal, siginfo, context)
  // either way, and fills the siginfo in when the program asked for it.
  copy.sa_sigaction = counting_handler;
  const int r = real().sigaction(sig, &copy, old);
  if (r != 0) {
    g_handlers[sig].fn.store(previous, std::memory_order_release);
    return r;
  }
  unwrap(old, previous);
  return 0;
}

UFFDLAZY_EXPORT sighandler_t signal(int sig, sighandler_t handler) {
  return set_handler(real().signal, sig, handler, "signal");
}
UFFDLAZY_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler) {
  return set_handler(real().bsd_signal, sig, handler, "bsd_signal");
}
UFFDLAZY_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler) {
  return set_handler(real().sysv_signal, sig, handler, "sysv_signal");
}
UFFDLAZY_EXPORT sighandler_t sigset(int sig, sighandler_t handler) {
  return set_handler(real().sigset, sig, handler, "sigset");
}

UFFDLAZY_EXPORT int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  sigset_t scratch;
  return real().sigprocmask(how, how == SIG_UNBLOCK ? set : without_stop(set, &scratch), old);
}

UFFDLAZY_EXPORT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  sigset_t scratch;
  return real().pthread_sigmask(how, how == SIG_UNBLOCK ? set : without_stop(set, &scratch), old);
}

UFFDLAZY_EXPORT int pause() {
  return until_done([] { return real().pause(); });
}

UFFDLAZY_EXPORT int sigsuspend(const sigset_t* mask) {
  sigset_t scratch;
  const sigset_t* m = without_stop(mask, &scratch);
  return until_done([&] { return real().sigsuspend(m); });
}

UFFDLAZY_EXPORT int sigwait(const sigset_t* set, int* sig) {
  // glibc's sigwait waits on after EINTR itself.
  check_wait_set(set, "sigwait");
  sigset_t scratch;
  return real().sigwait(without_stop(set, &scratch), sig);
}

UFFDLAZY_EXPORT int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  check_wait_set(set, "sigwaitinfo");
  sigset_t scratch;
  const sigset_t* s = without_stop(set, &scratch);
  return until_done([&] { return real().sigwaitinfo(s, info); });
}

UFFDLAZY_EXPORT int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  check_wait_set(set, "sigtimedwait");
  sigset_t scratch;
  const sigset_t* s = without_stop(set, &scratch);
  return until_done_within(timeout, [&](const timespec* t) { return real().sigtimedwait(s, info, t); });
}

UFFDLAZY_EXPORT int signalfd(int fd, const sigset_t* mask, int flags) {
  check_wait_set(mask, "signalfd");
  sigset_t scratch;
  return real().signalfd(fd, without_stop(mask, &scratch), flags);
}

UFFDLAZY_EXPORT int poll(pollfd* fds, nfds_t n, int timeout) {
  const Deadline d(timeout);
  bool first = true;
  return until_done([&] {
    const int t = timeout < 0 || first ? timeout : d.left_ms();
    first = false;
    return real().poll(fds, n, t);
  });
}

UFFDLAZY_EXPORT int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  sigset_t scratch;
  const sigset_t* m = without_stop(mask, &scratch);
  return until_done_within(timeout, [&](const timespec* t) { return real().ppoll(fds, n, t, m); });
}

UFFDLAZY_EXPORT int select(int n, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
  // Linux leaves the sets alone on EINTR and writes the time left into *timeout: called again,
  // it waits for what was left, and the caller reads back what Linux would have left it.
  return until_done([&] { return real().select(n, r, w, e, timeout); });
}

UFFDLAZY_EXPORT int pselect(int n, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* mask) {
  sigset_t scratch;
  const sigset_t* m = without_stop(mask, &scratch);
  return until_done_within(timeout, [&](const timespec* t) { return real().pselect(n, r, w, e, t, m); });
}

UFFDLAZY_EXPORT int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
  const Deadline d(timeout);
  bool first = true;
  return until_done([&] {
    const int t = timeout < 0 || first ? timeout : d.left_ms();
    first = false;
    return real().epoll_wait(epfd, events, max, t);
  });
}

UFFDLAZY_EXPORT int epoll_pwait(int epfd, epoll_event* events, int max, int timeout, const sigset_t* mask) {
  sigset_t scratch;
  const sigset_t* m = without_stop(mask, &scratch);
  const Deadline d(timeout);
  bool first = true;
  return until_done([&] {
    const int t = timeout < 0 || first ? timeout : d.left_ms();
    first = false;
    return real().epoll_pwait(epfd, events, max, t, m);
  });
}

UFFDLAZY_EXPORT int epoll_pwait2(int epfd, epoll_event* events, int max, const timespec* timeout, const sigset_t* mask) {
  sigset_t scratch;
  const sigset_t* m = without_stop(mask, &scratch);
  return until_done_within(timeout, [&](const timespec* t) { return real().epoll_pwait2(epfd, events, max, t, m); });
}

UFFDLAZY_EXPORT int clock_nanosleep(clockid_t clock, int flags, const timespec* request, timespec* remain) {
  // The time left is needed to go on after a stop, even when the caller did not ask for it.
  timespec left;
  timespec* rem = remain ? remain : &left;
  Watch w;
  for (;;) {
    const int r = real().clock_nanosleep(clock, flags, request, rem);
    if (!w.again(r)) return r;
    // Interrupted by the shim, not by the program's own signal: sleep on. An absolute deadline
    // stays as it is; a relative one is what was left (copied: the kernel writes *rem again).
    if (!(flags & TIMER_ABSTIME)) {
      left = *rem;
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

// glibc's sleep: the seconds left, truncated; errno untouched when the whole time was slept.
UFFDLAZY_EXPORT unsigned int sleep(unsigned int seconds) {
  const int saved = errno;
  timespec ts = {time_t(seconds), 0};
  if (nanosleep(&ts, &ts) != 0) return unsigned(ts.tv_sec);
  errno = saved;
  return 0;
}

UFFDLAZY_EXPORT int usleep(useconds_t usec) {
  timespec ts = {time_t(usec / 1000000), long(usec % 1000000) * 1000};
  return nanosleep(&ts, nullptr);
}

UFFDLAZY_EXPORT int sem_timedwait(sem_t* sem, const timespec* deadline) {
  return until_done([&] { return real().sem_timedwait(sem, deadline); });
}

UFFDLAZY_EXPORT int sem_clockwait(sem_t* sem, clockid_t clock, const timespec* deadline) {
  return until_done([&] { return real().sem_clockwait(sem, clock, deadline); });
}
