// Every blocking call a checkpoint can interrupt, each printing what it returned: run without the
// shim, checkpointed while inside each call (and resumed), it must print exactly the same.
//
//   blocking_calls CALL... [--trigger] [--sync]
//
// For each CALL, in order, the main thread blocks in it while a helper thread waits until it is
// asleep there, then (with --trigger) sends the process SIGUSR2, the checkpoint trigger, as a
// user would. Calls with a timeout (1 s) end by themselves; the calls on stdin end when a byte
// arrives there; the others are woken by the helper (a byte in a pipe or socket, a SIGTERM for
// the main thread, a sem_post, ...) once it has read one byte of stdin: so a checkpoint in stop
// mode ends the process before the wake-up, and the resumed process gets it. With --sync the
// helper of a timed call reads its byte too (a driver sends one per checkpoint it saw, in
// continue mode). Pipes, sockets and the epoll descriptor exist only during the calls that use
// them (a checkpoint refuses them, in continue mode the program must run on unchanged).
// Timed calls print whether they waited their whole time ("full=1"); none prints a duration.
// Socket calls on a socket with a timeout (SO_RCVTIMEO, SO_SNDTIMEO), SysV semaphores and message
// queues and io_getevents fail with EINTR under SA_RESTART too: each is here, timed out or woken.
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <linux/aio_abi.h>
#include <sys/epoll.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <vector>

namespace {

constexpr long kTimeoutMs = 1000;

bool g_trigger = false;
bool g_sync = false;
pid_t g_main_tid = 0;  // for /proc only: a resumed thread has a new id (pthread_t stays right)
pthread_t g_main;
volatile sig_atomic_t g_terms = 0;
int g_pipe[2];
int g_sock[2];
int g_listener = -1;
char g_sock_path[108];
int g_epoll = -1;
int g_pending = -1, g_conn = -1;
int g_semid = -1, g_msgid = -1;
aio_context_t g_aio = 0;
constexpr size_t kMessage = 1024;
struct Message {
  long type;
  char text[kMessage];
};
sem_t g_sem;
pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
bool g_cond_flag = false;

enum Wake { kNone, kStdin, kPipe, kSock, kConnect, kTerm, kSem, kCond, kJoin, kDrain, kAcceptOne, kSemop, kMsgSend,
            kMsgTake };

// What a call needs besides what its wake-up does (a pipe, a socket pair, a listener).
enum Need : unsigned {
  kSocketPair = 1,    // g_sock
  kFullSocket = 2,    // g_sock, and g_sock[0] cannot send more
  kListener = 4,      // g_listener
  kFullListener = 8,  // g_listener whose queue is full (g_pending waits in it), and g_conn to connect
  kSemaphore = 16,    // g_semid: one SysV semaphore, 0
  kQueue = 32,        // g_msgid: a SysV message queue, empty
  kFullQueue = 64,    // g_msgid, full
  kAio = 128,         // g_aio: an AIO context
};

struct Call {
  const char* name;
  Wake wake;
  void (*run)();
  unsigned needs = 0;
};

uint64_t now_ns(clockid_t c = CLOCK_MONOTONIC) {
  timespec ts;
  clock_gettime(c, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

const char* err_name(int e) {
  switch (e) {
    case 0: return "0";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerrorname_np(e);
  }
}

// "full=1" when at least the timeout passed (the kernel may round up, never down).
int full(uint64_t start) { return now_ns() - start >= uint64_t(kTimeoutMs) * 1000000ull ? 1 : 0; }

timespec in_timeout() { return timespec{kTimeoutMs / 1000, (kTimeoutMs % 1000) * 1000000}; }

timespec deadline(clockid_t c) {
  const uint64_t t = now_ns(c) + uint64_t(kTimeoutMs) * 1000000ull;
  return timespec{time_t(t / 1000000000ull), long(t % 1000000000ull)};
}

void report(const char* name, long rc, int e, const char* extra = "") {
  printf("%s rc=%ld errno=%s%s\n", name, rc, err_name(rc < 0 ? e : 0), extra);
  fflush(stdout);
}

void report_timed(const char* name, long rc, int e, uint64_t start, const char* extra = "") {
  char more[128];
  snprintf(more, sizeof more, " full=%d%s", full(start), extra);
  report(name, rc, e, more);
}

// The descriptor the woken calls wait on: stdin, or the pipe the helper writes.
int g_fd = 0;

void with_byte(const char* name, long rc, int e) {
  char c = '-';
  if (rc > 0 && read(g_fd, &c, 1) != 1) c = '?';
  char more[32];
  snprintf(more, sizeof more, " byte=%c", c);
  report(name, rc, e, more);
}

// Timed calls: nothing ever arrives.
void t_nanosleep() {
  const uint64_t s = now_ns();
  timespec req = in_timeout(), rem = {9, 9};
  const int rc = nanosleep(&req, &rem);
  const int e = errno;
  char more[64];
  snprintf(more, sizeof more, " rem=%ld.%09ld", long(rem.tv_sec), rem.tv_nsec);
  report_timed("nanosleep", rc, e, s, rc ? more : "");
}
void t_nanosleep_null() {
  const uint64_t s = now_ns();
  timespec req = in_timeout();
  const int rc = nanosleep(&req, nullptr);
  report_timed("nanosleep-null", rc, errno, s);
}
void t_clock_abs() {
  const uint64_t s = now_ns();
  timespec d = deadline(CLOCK_MONOTONIC);
  const int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, nullptr);
  report_timed("clock-abs", rc, 0, s, rc ? " (error returned)" : "");
}
void t_sleep() {
  const uint64_t s = now_ns();
  errno = 1234;
  const unsigned left = sleep(kTimeoutMs / 1000);
  char more[64];
  snprintf(more, sizeof more, " errno-kept=%d", errno == 1234);
  report_timed("sleep", long(left), 0, s, more);
}
void t_usleep() {
  const uint64_t s = now_ns();
  const int rc = usleep(useconds_t(kTimeoutMs * 1000));
  report_timed("usleep", rc, errno, s);
}
void t_poll() {
  const uint64_t s = now_ns();
  const int rc = poll(nullptr, 0, int(kTimeoutMs));
  report_timed("poll-timeout", rc, errno, s);
}
void t_ppoll() {
  const uint64_t s = now_ns();
  timespec t = in_timeout();
  const int rc = ppoll(nullptr, 0, &t, nullptr);
  char more[64];
  snprintf(more, sizeof more, " timeout-kept=%d", t.tv_sec == kTimeoutMs / 1000 && t.tv_nsec == 0);
  report_timed("ppoll-timeout", rc, errno, s, more);
}
void t_select() {
  const uint64_t s = now_ns();
  timeval t = {kTimeoutMs / 1000, 0};
  const int rc = select(0, nullptr, nullptr, nullptr, &t);
  char more[64];
  // Linux writes the time left back: none, after a timeout.
  snprintf(more, sizeof more, " left=%ld.%06ld", long(t.tv_sec), long(t.tv_usec));
  report_timed("select-timeout", rc, errno, s, more);
}
void t_pselect() {
  const uint64_t s = now_ns();
  timespec t = in_timeout();
  const int rc = pselect(0, nullptr, nullptr, nullptr, &t, nullptr);
  report_timed("pselect-timeout", rc, errno, s);
}
void t_epoll() {
  const uint64_t s = now_ns();
  epoll_event ev;
  const int rc = epoll_wait(g_epoll, &ev, 1, int(kTimeoutMs));
  report_timed("epoll-timeout", rc, errno, s);
}
void t_epoll_pwait() {
  const uint64_t s = now_ns();
  epoll_event ev;
  sigset_t none;
  sigemptyset(&none);
  const int rc = epoll_pwait(g_epoll, &ev, 1, int(kTimeoutMs), &none);
  report_timed("epoll-pwait-timeout", rc, errno, s);
}
void t_epoll_pwait2() {
  const uint64_t s = now_ns();
  epoll_event ev;
  timespec t = in_timeout();
  const int rc = epoll_pwait2(g_epoll, &ev, 1, &t, nullptr);
  report_timed("epoll-pwait2-timeout", rc, errno, s);
}
void t_sigtimedwait() {
  const uint64_t s = now_ns();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  timespec t = in_timeout();
  const int rc = sigtimedwait(&set, nullptr, &t);
  report_timed("sigtimedwait-timeout", rc, errno, s);
}
void t_sem_timedwait() {
  const uint64_t s = now_ns();
  timespec d = deadline(CLOCK_REALTIME);
  const int rc = sem_timedwait(&g_sem, &d);
  report_timed("sem-timedwait", rc, errno, s);
}
void t_cond_timedwait() {
  const uint64_t s = now_ns();
  timespec d = deadline(CLOCK_REALTIME);
  pthread_mutex_lock(&g_mutex);
  int rc = 0;
  while (!g_cond_flag && rc == 0) rc = pthread_cond_timedwait(&g_cond, &g_mutex, &d);
  pthread_mutex_unlock(&g_mutex);
  report_timed("cond-timedwait", -1, rc, s);
}

// Woken by the helper.
void w_pause() {
  const int rc = pause();
  const int e = errno;
  char more[32];
  snprintf(more, sizeof more, " terms=%d", int(g_terms));
  report("pause", rc, e, more);
}
void w_sigsuspend() {
  sigset_t none;
  sigemptyset(&none);
  const int rc = sigsuspend(&none);
  const int e = errno;
  char more[32];
  snprintf(more, sizeof more, " terms=%d", int(g_terms));
  report("sigsuspend", rc, e, more);
}
void w_sigwaitinfo() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  const int rc = sigwaitinfo(&set, nullptr);
  report("sigwaitinfo", rc, errno);
}
void w_sigtimedwait() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  timespec t = {60, 0};
  const int rc = sigtimedwait(&set, nullptr, &t);
  report("sigtimedwait", rc, errno);
}
void w_sigwait() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  const int rc = sigwait(&set, &sig);
  char more[32];
  snprintf(more, sizeof more, " sig=%d", sig);
  report("sigwait", rc, 0, more);
}
void w_poll() {
  pollfd p = {g_fd, POLLIN, 0};
  const int rc = poll(&p, 1, -1);
  with_byte("poll", rc, errno);
}
void w_ppoll() {
  pollfd p = {g_fd, POLLIN, 0};
  const int rc = ppoll(&p, 1, nullptr, nullptr);
  with_byte("ppoll", rc, errno);
}
void w_select() {
  fd_set r;
  FD_ZERO(&r);
  FD_SET(g_fd, &r);
  const int rc = select(g_fd + 1, &r, nullptr, nullptr, nullptr);
  with_byte("select", rc, errno);
}
void w_pselect() {
  fd_set r;
  FD_ZERO(&r);
  FD_SET(g_fd, &r);
  const int rc = pselect(g_fd + 1, &r, nullptr, nullptr, nullptr, nullptr);
  with_byte("pselect", rc, errno);
}
void w_epoll() {
  epoll_event ev;
  const int rc = epoll_wait(g_epoll, &ev, 1, -1);
  with_byte("epoll", rc, errno);
}
void w_epoll_pwait() {
  epoll_event ev;
  const int rc = epoll_pwait(g_epoll, &ev, 1, -1, nullptr);
  with_byte("epoll-pwait", rc, errno);
}
void w_epoll_pwait2() {
  epoll_event ev;
  const int rc = epoll_pwait2(g_epoll, &ev, 1, nullptr, nullptr);
  with_byte("epoll-pwait2", rc, errno);
}
void w_read() {
  char c = 0;
  const long rc = read(g_fd, &c, 1);
  char more[32];
  snprintf(more, sizeof more, " byte=%c", rc == 1 ? c : '-');
  report("read", rc, errno, more);
}
void w_recv() {
  char c = 0;
  const long rc = recv(g_sock[0], &c, 1, 0);
  char more[32];
  snprintf(more, sizeof more, " byte=%c", rc == 1 ? c : '-');
  report("recv", rc, errno, more);
}
void w_accept() {
  const int fd = accept(g_listener, nullptr, nullptr);
  report("accept", fd >= 0 ? 0 : fd, errno);
  if (fd >= 0) close(fd);
}
void w_sem_wait() {
  const int rc = sem_wait(&g_sem);
  report("sem-wait", rc, errno);
}
void w_cond_wait() {
  pthread_mutex_lock(&g_mutex);
  while (!g_cond_flag) pthread_cond_wait(&g_cond, &g_mutex);
  g_cond_flag = false;
  pthread_mutex_unlock(&g_mutex);
  report("cond-wait", 0, 0);
}
pthread_t g_helper;
void w_join() {
  const int rc = pthread_join(g_helper, nullptr);
  g_helper = 0;
  report("join", -1, rc);
}

// A socket timeout: 1 s for the timed calls, long for the woken ones.
void socket_timeout(int fd, int option, long ms) {
  timeval tv = {ms / 1000, (ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv)) _exit(84);
}

void t_recv_timeo() {
  socket_timeout(g_sock[0], SO_RCVTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  char c;
  const long rc = recv(g_sock[0], &c, 1, 0);
  report_timed("recv-timeo", rc, errno, s);
}
void t_read_timeo() {
  socket_timeout(g_sock[0], SO_RCVTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  char c;
  const long rc = read(g_sock[0], &c, 1);
  report_timed("read-timeo", rc, errno, s);
}
void t_recvmsg_timeo() {
  socket_timeout(g_sock[0], SO_RCVTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  char c;
  iovec v = {&c, 1};
  msghdr m = {};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  const long rc = recvmsg(g_sock[0], &m, 0);
  report_timed("recvmsg-timeo", rc, errno, s);
}
void t_recvmmsg_timeo() {
  socket_timeout(g_sock[0], SO_RCVTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  char c;
  iovec v = {&c, 1};
  mmsghdr m = {};
  m.msg_hdr.msg_iov = &v;
  m.msg_hdr.msg_iovlen = 1;
  const long rc = recvmmsg(g_sock[0], &m, 1, 0, nullptr);
  report_timed("recvmmsg-timeo", rc, errno, s);
}
void t_accept_timeo() {
  socket_timeout(g_listener, SO_RCVTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  const int fd = accept(g_listener, nullptr, nullptr);
  report_timed("accept-timeo", fd >= 0 ? 0 : fd, errno, s);
  if (fd >= 0) close(fd);
}
void t_send_timeo() {
  socket_timeout(g_sock[0], SO_SNDTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  const long rc = send(g_sock[0], "x", 1, 0);
  report_timed("send-timeo", rc, errno, s);
}
void t_writev_timeo() {
  socket_timeout(g_sock[0], SO_SNDTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  char c = 'x';
  iovec v = {&c, 1};
  const long rc = writev(g_sock[0], &v, 1);
  report_timed("writev-timeo", rc, errno, s);
}
void t_connect_timeo() {
  socket_timeout(g_conn, SO_SNDTIMEO, kTimeoutMs);
  const uint64_t s = now_ns();
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, g_sock_path, sizeof a.sun_path);
  const int rc = connect(g_conn, reinterpret_cast<sockaddr*>(&a), sizeof a);
  report_timed("connect-timeo", rc, errno, s);
}
void t_semtimedop() {
  const uint64_t s = now_ns();
  sembuf op = {0, -1, 0};
  timespec t = in_timeout();
  const int rc = semtimedop(g_semid, &op, 1, &t);
  report_timed("semtimedop", rc, errno, s);
}
void t_io_getevents() {
  const uint64_t s = now_ns();
  io_event ev[1];
  timespec t = in_timeout();
  // libc has no io_getevents: the system call, through syscall(2).
  const long rc = syscall(SYS_io_getevents, g_aio, 1L, 1L, ev, &t);
  report_timed("io-getevents-timeout", rc, errno, s);
}

void w_recv_timeo() {
  socket_timeout(g_sock[0], SO_RCVTIMEO, 600000);
  char c = 0;
  const long rc = recv(g_sock[0], &c, 1, 0);
  char more[32];
  snprintf(more, sizeof more, " byte=%c", rc == 1 ? c : '-');
  report("recv-timeo-woken", rc, errno, more);
}
void w_accept_timeo() {
  socket_timeout(g_listener, SO_RCVTIMEO, 600000);
  const int fd = accept(g_listener, nullptr, nullptr);
  report("accept-timeo-woken", fd >= 0 ? 0 : fd, errno);
  if (fd >= 0) close(fd);
}
void w_send_timeo() {
  socket_timeout(g_sock[0], SO_SNDTIMEO, 600000);
  const long rc = send(g_sock[0], "x", 1, 0);
  report("send-timeo-woken", rc, errno);
}
void w_connect_timeo() {
  socket_timeout(g_conn, SO_SNDTIMEO, 600000);
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, g_sock_path, sizeof a.sun_path);
  const int rc = connect(g_conn, reinterpret_cast<sockaddr*>(&a), sizeof a);
  report("connect-timeo-woken", rc, errno);
}
void w_semop() {
  sembuf op = {0, -1, 0};
  const int rc = semop(g_semid, &op, 1);
  report("semop", rc, errno);
}
void w_msgrcv() {
  Message m = {};
  const long rc = msgrcv(g_msgid, &m, kMessage, 0, 0);
  char more[32];
  snprintf(more, sizeof more, " byte=%c", rc > 0 ? m.text[0] : '-');
  report("msgrcv", rc, errno, more);
}
void w_msgsnd() {
  Message m = {1, {'m'}};
  const int rc = msgsnd(g_msgid, &m, kMessage, 0);
  report("msgsnd", rc, errno);
}
void w_io_getevents() {
  // Woken by a byte in the pipe: an AIO poll of its read end completes.
  iocb cb = {};
  cb.aio_lio_opcode = IOCB_CMD_POLL;
  cb.aio_fildes = uint32_t(g_pipe[0]);
  cb.aio_buf = POLLIN;
  iocb* list[1] = {&cb};
  if (syscall(SYS_io_submit, g_aio, 1L, list) != 1) _exit(85);
  io_event ev[1] = {};
  const long rc = syscall(SYS_io_getevents, g_aio, 1L, 1L, ev, nullptr);
  char more[32];
  snprintf(more, sizeof more, " res=%lld", rc == 1 ? static_cast<long long>(ev[0].res) : -1LL);
  report("io-getevents", rc, errno, more);
}

const Call kCalls[] = {
    {"nanosleep", kNone, t_nanosleep},
    {"nanosleep-null", kNone, t_nanosleep_null},
    {"clock-abs", kNone, t_clock_abs},
    {"sleep", kNone, t_sleep},
    {"usleep", kNone, t_usleep},
    {"poll-timeout", kNone, t_poll},
    {"ppoll-timeout", kNone, t_ppoll},
    {"select-timeout", kNone, t_select},
    {"pselect-timeout", kNone, t_pselect},
    {"epoll-timeout", kNone, t_epoll},
    {"epoll-pwait-timeout", kNone, t_epoll_pwait},
    {"epoll-pwait2-timeout", kNone, t_epoll_pwait2},
    {"sigtimedwait-timeout", kNone, t_sigtimedwait},
    {"sem-timedwait", kNone, t_sem_timedwait},
    {"cond-timedwait", kNone, t_cond_timedwait},
    {"pause", kTerm, w_pause},
    {"sigsuspend", kTerm, w_sigsuspend},
    {"sigwaitinfo", kTerm, w_sigwaitinfo},
    {"sigtimedwait", kTerm, w_sigtimedwait},
    {"sigwait", kTerm, w_sigwait},
    {"poll", kStdin, w_poll},
    {"ppoll", kStdin, w_ppoll},
    {"select", kStdin, w_select},
    {"pselect", kStdin, w_pselect},
    {"read", kStdin, w_read},
    {"poll-pipe", kPipe, w_poll},
    {"select-pipe", kPipe, w_select},
    {"read-pipe", kPipe, w_read},
    {"epoll", kPipe, w_epoll},
    {"epoll-pwait", kPipe, w_epoll_pwait},
    {"epoll-pwait2", kPipe, w_epoll_pwait2},
    {"recv", kSock, w_recv},
    {"accept", kConnect, w_accept},
    {"sem-wait", kSem, w_sem_wait},
    {"cond-wait", kCond, w_cond_wait},
    {"join", kJoin, w_join},
    {"recv-timeo", kNone, t_recv_timeo, kSocketPair},
    {"read-timeo", kNone, t_read_timeo, kSocketPair},
    {"recvmsg-timeo", kNone, t_recvmsg_timeo, kSocketPair},
    {"recvmmsg-timeo", kNone, t_recvmmsg_timeo, kSocketPair},
    {"accept-timeo", kNone, t_accept_timeo, kListener},
    {"send-timeo", kNone, t_send_timeo, kFullSocket},
    {"writev-timeo", kNone, t_writev_timeo, kFullSocket},
    {"connect-timeo", kNone, t_connect_timeo, kFullListener},
    {"semtimedop", kNone, t_semtimedop, kSemaphore},
    {"io-getevents-timeout", kNone, t_io_getevents, kAio},
    {"recv-timeo-woken", kSock, w_recv_timeo, kSocketPair},
    {"accept-timeo-woken", kConnect, w_accept_timeo, kListener},
    {"send-timeo-woken", kDrain, w_send_timeo, kFullSocket},
    {"connect-timeo-woken", kAcceptOne, w_connect_timeo, kFullListener},
    {"semop", kSemop, w_semop, kSemaphore},
    {"msgrcv", kMsgSend, w_msgrcv, kQueue},
    {"msgsnd", kMsgTake, w_msgsnd, kFullQueue},
    {"io-getevents", kPipe, w_io_getevents, kAio},
};

const Call* g_call = nullptr;
bool g_blocking = false;  // atomics: the main thread is about to block, or is done
bool g_done = false;

// The main thread is asleep (state S) once it has said it is about to block.
void wait_until_main_sleeps() {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", int(g_main_tid));
  for (;;) {
    if (__atomic_load_n(&g_done, __ATOMIC_ACQUIRE)) return;
    if (__atomic_load_n(&g_blocking, __ATOMIC_ACQUIRE)) {
      char buf[512] = {};
      const int fd = open(path, O_RDONLY);
      const long n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0) close(fd);
      const char* p = n > 0 ? strrchr(buf, ')') : nullptr;
      if (p && p[1] == ' ' && p[2] == 'S') return;
    }
    usleep(1000);
  }
}

void* helper(void*) {
  wait_until_main_sleeps();
  if (g_trigger) kill(getpid(), SIGUSR2);
  if (g_call->wake == kStdin || (g_call->wake == kNone && !g_sync)) return nullptr;
  char c;
  if (read(0, &c, 1) != 1) _exit(90);
  switch (g_call->wake) {
    case kNone:
    case kStdin:
    case kJoin:
      break;
    case kPipe:
      if (write(g_pipe[1], "p", 1) != 1) _exit(91);
      break;
    case kSock:
      if (send(g_sock[1], "s", 1, 0) != 1) _exit(92);
      break;
    case kConnect: {
      const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a = {};
      a.sun_family = AF_UNIX;
      memcpy(a.sun_path, g_sock_path, sizeof a.sun_path);
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(93);
      close(fd);
      break;
    }
    case kTerm:
      pthread_kill(g_main, SIGTERM);
      break;
    case kSem:
      sem_post(&g_sem);
      break;
    case kDrain: {
      char buf[4096];
      while (recv(g_sock[1], buf, sizeof buf, MSG_DONTWAIT) > 0) {
      }
      break;
    }
    case kAcceptOne: {
      const int fd = accept(g_listener, nullptr, nullptr);
      if (fd < 0) _exit(94);
      close(fd);
      break;
    }
    case kSemop: {
      sembuf op = {0, 1, 0};
      if (semop(g_semid, &op, 1)) _exit(95);
      break;
    }
    case kMsgSend: {
      Message m = {1, {'m'}};
      if (msgsnd(g_msgid, &m, 1, 0)) _exit(96);
      break;
    }
    case kMsgTake: {
      Message m;
      if (msgrcv(g_msgid, &m, kMessage, 0, IPC_NOWAIT) < 0) _exit(97);
      break;
    }
    case kCond:
      pthread_mutex_lock(&g_mutex);
      g_cond_flag = true;
      pthread_cond_signal(&g_cond);
      pthread_mutex_unlock(&g_mutex);
      break;
  }
  return nullptr;
}

void on_term(int) { g_terms = g_terms + 1; }

}  // namespace

int main(int argc, char** argv) {
  g_main_tid = pid_t(syscall(SYS_gettid));
  g_main = pthread_self();
  struct sigaction sa = {};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);
  // SIGTERM is only ever taken by the calls that wait for it, and by pause and sigsuspend.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  if (sem_init(&g_sem, 0, 0)) return 80;
  std::vector<const Call*> calls;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--trigger")) {
      g_trigger = true;
    } else if (!strcmp(argv[i], "--sync")) {
      g_sync = true;
    } else {
      const Call* found = nullptr;
      for (const Call& c : kCalls) {
        if (!strcmp(c.name, argv[i])) found = &c;
      }
      if (!found) {
        fprintf(stderr, "blocking_calls: unknown call %s\n", argv[i]);
        return 2;
      }
      calls.push_back(found);
    }
  }
  for (const Call* c : calls) {
    const bool uses_epoll = !strncmp(c->name, "epoll", 5);
    g_fd = 0;
    if (c->wake == kPipe || uses_epoll) {
      if (pipe(g_pipe)) return 81;
      g_fd = g_pipe[0];
    }
    if (uses_epoll) {
      g_epoll = epoll_create1(0);
      epoll_event ev = {};
      ev.events = EPOLLIN;
      if (g_epoll < 0 || epoll_ctl(g_epoll, EPOLL_CTL_ADD, g_pipe[0], &ev)) return 81;
    }
    const bool pair = c->wake == kSock || (c->needs & (kSocketPair | kFullSocket));
    if (pair && socketpair(AF_UNIX, SOCK_STREAM, 0, g_sock)) return 82;
    if (c->needs & kFullSocket) {
      static char chunk[65536];
      while (send(g_sock[0], chunk, sizeof chunk, MSG_DONTWAIT) > 0) {
      }
      while (send(g_sock[0], chunk, 1, MSG_DONTWAIT) > 0) {
      }
    }
    if (c->needs & kSemaphore) {
      g_semid = semget(IPC_PRIVATE, 1, 0600);
      if (g_semid < 0) return 86;
    }
    if (c->needs & (kQueue | kFullQueue)) {
      g_msgid = msgget(IPC_PRIVATE, 0600);
      if (g_msgid < 0) return 87;
      Message m = {1, {'f'}};
      while ((c->needs & kFullQueue) && msgsnd(g_msgid, &m, kMessage, IPC_NOWAIT) == 0) {
      }
    }
    if ((c->needs & kAio) && syscall(SYS_io_setup, 4L, &g_aio)) return 88;
    if (c->wake == kConnect || (c->needs & (kListener | kFullListener))) {
      snprintf(g_sock_path, sizeof g_sock_path, "/tmp/blocking-calls-%d", int(getpid()));
      unlink(g_sock_path);
      g_listener = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a = {};
      a.sun_family = AF_UNIX;
      memcpy(a.sun_path, g_sock_path, sizeof a.sun_path);
      if (bind(g_listener, reinterpret_cast<sockaddr*>(&a), sizeof a) ||
          listen(g_listener, (c->needs & kFullListener) ? 0 : 1)) {
        return 82;
      }
      if (c->needs & kFullListener) {
        // A queue of one, taken by g_pending: g_conn's connect waits until it is accepted.
        g_pending = socket(AF_UNIX, SOCK_STREAM, 0);
        g_conn = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(g_pending, reinterpret_cast<sockaddr*>(&a), sizeof a)) return 82;
      }
    }
    const bool waits_for_term = c->run == w_sigwaitinfo || c->run == w_sigtimedwait || c->run == w_sigwait ||
                                c->run == w_sigsuspend || c->run == t_sigtimedwait;
    pthread_sigmask(waits_for_term ? SIG_BLOCK : SIG_UNBLOCK, &term, nullptr);
    g_call = c;
    __atomic_store_n(&g_blocking, false, __ATOMIC_RELEASE);
    __atomic_store_n(&g_done, false, __ATOMIC_RELEASE);
    if (pthread_create(&g_helper, nullptr, helper, nullptr)) return 83;
    __atomic_store_n(&g_blocking, true, __ATOMIC_RELEASE);
    c->run();
    __atomic_store_n(&g_done, true, __ATOMIC_RELEASE);
    if (g_helper) pthread_join(g_helper, nullptr);
    if (c->wake == kPipe || uses_epoll) close(g_pipe[0]), close(g_pipe[1]);
    if (uses_epoll) close(g_epoll);
    if (pair) close(g_sock[0]), close(g_sock[1]);
    if (g_pending >= 0) close(g_pending), close(g_conn), g_pending = g_conn = -1;
    if (g_semid >= 0) semctl(g_semid, 0, IPC_RMID), g_semid = -1;
    if (g_msgid >= 0) msgctl(g_msgid, IPC_RMID, nullptr), g_msgid = -1;
    if (g_aio) syscall(SYS_io_destroy, g_aio), g_aio = 0;
    pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
    if (g_listener >= 0) {
      close(g_listener);
      unlink(g_sock_path);
      g_listener = -1;
    }
  }
  printf("done\n");
  return 0;
}
