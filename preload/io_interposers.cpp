// Blocking calls on sockets, SysV IPC and Linux AIO that a signal interrupts with EINTR even under
// SA_RESTART, made again when only the shim's signals interrupted them (preload/call_again.h), so
// that a checkpoint stays invisible to them:
//
// - socket calls on a socket with a timeout (SO_RCVTIMEO for accept, recv*, read, readv;
//   SO_SNDTIMEO for connect, send*, write, writev): without a timeout the kernel restarts them.
//   The timeout is the socket's, and the kernel does not say how much of it is left: each call
//   notes when it started (a coarse clock, read only from the vDSO), and after an interruption of
//   the shim's waits with ppoll for what is left of the socket's timeout before calling again.
//   When that runs out, the call returns what the kernel returns at the timeout (EAGAIN;
//   EINPROGRESS for connect on an internet socket); a connection whose connect was interrupted
//   goes on in the kernel, and connect called again says how it ended.
// - semop, semtimedop (the time left of its relative timeout), msgrcv, msgsnd.
// - io_getevents (libaio's, by symbol, and the system call through syscall(2); io_pgetevents
//   too): interrupted after some events, it returns a short count, so it goes on collecting until
//   min_nr events or its timeout, as the call would have without the interruption.
//
// Every real function is looked up in the shim's constructor (or at the first call of any of
// these); readv and writev, which anything may call at any time, make a raw system call until
// then. read and write are proc_mem_interposers.cpp's, which call read_through_checkpoint and
// write_through_checkpoint here (glibc's own bodies inside).
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <dlfcn.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/sem.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>

#include "core/base/raw_syscall.h"
#include "core/checkpoint/thread_stop.h"
#include "preload/call_again.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

extern "C" void __chk_fail() __attribute__((noreturn));
extern "C" ssize_t __read(int fd, void* buf, size_t n);
extern "C" ssize_t __write(int fd, const void* buf, size_t n);

namespace {

using uffdlazy::preload::Deadline;
using uffdlazy::preload::now_ns;
using uffdlazy::preload::Watch;
namespace sys = uffdlazy::sys;

using ReadvFn = ssize_t (*)(int, const iovec*, int);
using RecvFn = ssize_t (*)(int, void*, size_t, int);
using RecvfromFn = ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*);
using RecvmsgFn = ssize_t (*)(int, msghdr*, int);
using RecvmmsgFn = int (*)(int, mmsghdr*, unsigned int, int, timespec*);
using SendFn = ssize_t (*)(int, const void*, size_t, int);
using SendtoFn = ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t);
using SendmsgFn = ssize_t (*)(int, const msghdr*, int);
using SendmmsgFn = int (*)(int, mmsghdr*, unsigned int, int);
using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using Accept4Fn = int (*)(int, sockaddr*, socklen_t*, int);
using ConnectFn = int (*)(int, const sockaddr*, socklen_t);
using SemopFn = int (*)(int, sembuf*, size_t);
using SemtimedopFn = int (*)(int, sembuf*, size_t, const timespec*);
using MsgrcvFn = ssize_t (*)(int, void*, size_t, long, int);
using MsgsndFn = int (*)(int, const void*, size_t, int);
using IoGeteventsFn = int (*)(aio_context_t, long, long, io_event*, timespec*);

struct Real {
  ReadvFn readv, writev;
  RecvFn recv;
  RecvfromFn recvfrom;
  RecvmsgFn recvmsg;
  RecvmmsgFn recvmmsg;
  SendFn send;
  SendtoFn sendto;
  SendmsgFn sendmsg;
  SendmmsgFn sendmmsg;
  AcceptFn accept;
  Accept4Fn accept4;
  ConnectFn connect;
  SemopFn semop;
  SemtimedopFn semtimedop;
  MsgrcvFn msgrcv;
  MsgsndFn msgsnd;
  IoGeteventsFn io_getevents;  // libaio's, when the program has it
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
    find(&r.readv, "readv");
    find(&r.writev, "writev");
    find(&r.recv, "recv");
    find(&r.recvfrom, "recvfrom");
    find(&r.recvmsg, "recvmsg");
    find(&r.recvmmsg, "recvmmsg");
    find(&r.send, "send");
    find(&r.sendto, "sendto");
    find(&r.sendmsg, "sendmsg");
    find(&r.sendmmsg, "sendmmsg");
    find(&r.accept, "accept");
    find(&r.accept4, "accept4");
    find(&r.connect, "connect");
    find(&r.semop, "semop");
    find(&r.semtimedop, "semtimedop");
    find(&r.msgrcv, "msgrcv");
    find(&r.msgsnd, "msgsnd");
    find(&r.io_getevents, "io_getevents");
    g_real = r;
    g_resolved.store(true, std::memory_order_release);
  }
  return g_real;
}

// The raw result as libc reports it.
long finish(long r) {
  if (sys::failed(r)) {
    errno = int(-r);
    return -1;
  }
  return r;
}

// --- Socket calls ---

enum class Way { kIn, kOut, kConnect };

// Read from the vDSO (a few nanoseconds): a call's start is noted whatever the descriptor is.
uint64_t coarse_now_ns() { return now_ns(CLOCK_MONOTONIC_COARSE); }

// After an interruption of the shim's, at `started` (coarse clock): waits for what is left of the
// socket's timeout until it can go on. True: call again. False: errno says what the call returns
// (its timeout ran out, or the program's own signal interrupted the wait: EINTR, as it would have
// interrupted the call).
bool wait_rest_of_timeout(int fd, Way way, uint64_t started, Watch* w) {
  timeval tv = {};
  socklen_t len = sizeof tv;
  const int opt = way == Way::kIn ? SO_RCVTIMEO : SO_SNDTIMEO;
  if (sys::call6(SYS_getsockopt, fd, SOL_SOCKET, opt, long(&tv), long(&len)) != 0 || (!tv.tv_sec && !tv.tv_usec)) {
    return true;  // no socket timeout: nothing to count down
  }
  timespec res = {};
  clock_getres(CLOCK_MONOTONIC_COARSE, &res);
  // One tick of the coarse clock more, so that the call never ends before its time.
  const uint64_t end = started + uint64_t(tv.tv_sec) * 1000000000ull + uint64_t(tv.tv_usec) * 1000ull +
                       uint64_t(res.tv_sec) * 1000000000ull + uint64_t(res.tv_nsec);
  for (;;) {
    const uint64_t now = coarse_now_ns();
    if (now >= end) break;
    const uint64_t ns = end - now;
    timespec left = {time_t(ns / 1000000000ull), long(ns % 1000000000ull)};
    pollfd p = {fd, short(way == Way::kIn ? POLLIN : POLLOUT), 0};
    const long r = sys::call6(SYS_ppoll, long(&p), 1, long(&left), 0, 8);
    if (r > 0) return true;
    if (r == 0) break;
    if (r == -EINTR && w->again(EINTR)) continue;
    errno = int(-r);
    return false;
  }
  int domain = AF_UNIX;
  len = sizeof domain;
  if (way == Way::kConnect) sys::call6(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, long(&domain), long(&len));
  errno = way == Way::kConnect && domain != AF_UNIX ? EINPROGRESS : EAGAIN;
  return false;
}

template <class Fn>
auto socket_call(int fd, Way way, Fn&& call) {
  if (!uffdlazy::ckpt::stop_signal_reserved()) return call();  // no checkpoint: nothing to hide
  Watch w;
  const uint64_t started = coarse_now_ns();
  for (;;) {
    auto r = call();
    if (r >= 0 || !w.again(errno)) return r;
    // Only a socket with a timeout fails so: the kernel restarts the others.
    if (!wait_rest_of_timeout(fd, way, started, &w)) return decltype(r)(-1);
  }
}

// readv and writev, on any descriptor (on a socket they fail as recv and send do), may be called
// before the shim's constructor looked libc's up: a raw system call then.
bool plain_io_ready() { return g_resolved.load(std::memory_order_acquire) && g_real.readv && g_real.writev; }

// --- io_getevents ---

// call(min_nr, nr, events, timeout) returns the kernel's raw result. Collects until min_nr events,
// the timeout, an error, or the program's own signal.
template <class Fn>
long collect_events(long min_nr, long nr, io_event* events, const timespec* timeout, Fn&& call) {
  Watch w;
  const Deadline d(timeout);
  long got = 0;
  bool first = true;
  for (;;) {
    timespec left = timeout && !first ? d.left() : timespec{};
    const timespec* t = timeout ? (first ? timeout : &left) : nullptr;
    first = false;
    const long r = call(min_nr > got ? min_nr - got : 0, nr - got, events + got, t);
    if (r < 0) {
      if (r == -EINTR && w.again(EINTR)) continue;
      return got ? got : r;
    }
    got += r;
    if (got >= min_nr || got >= nr) return got;
    // Fewer than asked for: the timeout, or a signal after some events.
    if (timeout && !d.left().tv_sec && !d.left().tv_nsec) return got;
    if (!w.again(EINTR)) return got;
  }
}

// io_pgetevents' fifth argument: the mask in force while it waits, never blocking the stop signal.
struct AioSigset {
  const sigset_t* mask;
  size_t size;
};

}  // namespace

namespace uffdlazy::preload {

void io_interposers_init() { real(); }

// read and write themselves are proc_mem_interposers.cpp's (which also finish a transfer of the
// program's own memory): these are their first call. glibc's own bodies, callable at any time.
ssize_t read_through_checkpoint(int fd, void* buf, size_t n) {
  return socket_call(fd, Way::kIn, [&] { return __read(fd, buf, n); });
}

ssize_t write_through_checkpoint(int fd, const void* buf, size_t n) {
  return socket_call(fd, Way::kOut, [&] { return __write(fd, buf, n); });
}

long io_getevents_syscall(long number, const long* a) {
  AioSigset scratch_set;
  sigset_t scratch_mask;
  long usig = a[5];
  if (number == SYS_io_pgetevents && usig && ckpt::stop_signal_reserved()) {
    const auto* given = reinterpret_cast<const AioSigset*>(usig);
    if (given->mask && given->size == 8 && sigismember(given->mask, ckpt::kStopSignal)) {
      scratch_mask = *given->mask;
      sigdelset(&scratch_mask, ckpt::kStopSignal);
      scratch_set = {&scratch_mask, given->size};
      usig = long(&scratch_set);
    }
  }
  return collect_events(a[1], a[2], reinterpret_cast<io_event*>(a[3]), reinterpret_cast<const timespec*>(a[4]),
                        [&](long min_nr, long nr, io_event* ev, const timespec* t) {
                          return sys::call6(number, a[0], min_nr, nr, long(ev), long(t), usig);
                        });
}

}  // namespace uffdlazy::preload


UFFDLAZY_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return read(fd, buf, n);
}


UFFDLAZY_EXPORT ssize_t readv(int fd, const iovec* iov, int n) {
  if (!plain_io_ready()) return finish(sys::call6(SYS_readv, fd, long(iov), n));
  return socket_call(fd, Way::kIn, [&] { return g_real.readv(fd, iov, n); });
}

UFFDLAZY_EXPORT ssize_t writev(int fd, const iovec* iov, int n) {
  if (!plain_io_ready()) return finish(sys::call6(SYS_writev, fd, long(iov), n));
  return socket_call(fd, Way::kOut, [&] { return g_real.writev(fd, iov, n); });
}

UFFDLAZY_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  return socket_call(fd, Way::kIn, [&] { return real().recv(fd, buf, n, flags); });
}

UFFDLAZY_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}

UFFDLAZY_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* from_len) {
  return socket_call(fd, Way::kIn, [&] { return real().recvfrom(fd, buf, n, flags, from, from_len); });
}

UFFDLAZY_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from,
                                      socklen_t* from_len) {
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, from, from_len);
}

UFFDLAZY_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  return socket_call(fd, Way::kIn, [&] { return real().recvmsg(fd, msg, flags); });
}

UFFDLAZY_EXPORT int recvmmsg(int fd, mmsghdr* v, unsigned int n, int flags, timespec* timeout) {
  // Interrupted before its first message (after one it returns the count): its own timeout is
  // the one Linux left alone, as for a call that is made again.
  return socket_call(fd, Way::kIn, [&] { return real().recvmmsg(fd, v, n, flags, timeout); });
}

UFFDLAZY_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  return socket_call(fd, Way::kOut, [&] { return real().send(fd, buf, n, flags); });
}

UFFDLAZY_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t to_len) {
  return socket_call(fd, Way::kOut, [&] { return real().sendto(fd, buf, n, flags, to, to_len); });
}

UFFDLAZY_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  return socket_call(fd, Way::kOut, [&] { return real().sendmsg(fd, msg, flags); });
}

UFFDLAZY_EXPORT int sendmmsg(int fd, mmsghdr* v, unsigned int n, int flags) {
  return socket_call(fd, Way::kOut, [&] { return real().sendmmsg(fd, v, n, flags); });
}

UFFDLAZY_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  return socket_call(fd, Way::kIn, [&] { return real().accept(fd, addr, len); });
}

UFFDLAZY_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return socket_call(fd, Way::kIn, [&] { return real().accept4(fd, addr, len, flags); });
}

UFFDLAZY_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  int calls = 0;
  const int r = socket_call(fd, Way::kConnect, [&] {
    calls++;
    return real().connect(fd, addr, len);
  });
  // Called again on an internet socket still connecting, connect waits on and, if its timeout runs
  // out then, says EALREADY: the call the program made would have said EINPROGRESS.
  if (r < 0 && errno == EALREADY && calls > 1) errno = EINPROGRESS;
  return r;
}

UFFDLAZY_EXPORT int semop(int id, sembuf* ops, size_t n) {
  return uffdlazy::preload::until_done([&] { return real().semop(id, ops, n); });
}

UFFDLAZY_EXPORT int semtimedop(int id, sembuf* ops, size_t n, const timespec* timeout) {
  return uffdlazy::preload::until_done_within(timeout,
                                              [&](const timespec* t) { return real().semtimedop(id, ops, n, t); });
}

UFFDLAZY_EXPORT ssize_t msgrcv(int id, void* msg, size_t size, long type, int flags) {
  return uffdlazy::preload::until_done([&] { return real().msgrcv(id, msg, size, type, flags); });
}

UFFDLAZY_EXPORT int msgsnd(int id, const void* msg, size_t size, int flags) {
  return uffdlazy::preload::until_done([&] { return real().msgsnd(id, msg, size, flags); });
}

// libaio's io_getevents: returns -errno, as the system call does.
UFFDLAZY_EXPORT int io_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events, timespec* timeout) {
  IoGeteventsFn fn = real().io_getevents;
  return int(collect_events(min_nr, nr, events, timeout, [&](long mn, long n, io_event* ev, const timespec* t) {
    if (fn) return long(fn(ctx, mn, n, ev, const_cast<timespec*>(t)));
    return sys::call6(SYS_io_getevents, long(ctx), mn, n, long(ev), long(t));
  }));
}
