// The kernel objects resume_target holds with --objects LIST (comma-separated kinds), each used a
// little at every step so that data is in flight at any moment a checkpoint may take: a pipe or
// a socket always holds the record written last, a datagram queue grows, an eventfd counts, a
// timer runs. Every line it prints is the same in an uninterrupted run and in a checkpointed and
// resumed one, on any machine at any speed (a time is printed only as "within its range").
//
// Kinds: pipe fifo stream dgram seqpacket listen tcp udp eventfd epoll signalfd timerfd inotify
// ghost memfd posix-timer shared-anon sysv dontfork deleted-cwd closed-peer mapped-only advice proc-self
// dgram-server
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace held {

inline bool wanted(const std::string& list, const char* kind) {
  const std::string k = std::string(",") + kind + ",";
  return (std::string(",") + list + ",").find(k) != std::string::npos;
}

[[noreturn]] inline void broken(const char* what) {
  fprintf(stderr, "resume_target: %s: %s\n", what, strerror(errno));
  exit(9);
}

// A record of exactly 8 bytes: "KIND%04d" style, so a reader always reads whole ones.
inline std::string record(char kind, int n) {
  char b[16];
  snprintf(b, sizeof b, "%c%07d", kind, n);
  return std::string(b, 8);
}

inline std::string read_exact(int fd, size_t n) {
  std::string s(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, &s[got], n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return s.substr(0, got) + "<" + (r == 0 ? "eof" : strerror(errno)) + ">";
    got += size_t(r);
  }
  return s;
}

inline void write_all(int fd, const std::string& s) {
  if (write(fd, s.data(), s.size()) != ssize_t(s.size())) broken("write");
}

inline std::string fd_name(int fd) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return "?";
  std::string t(target, size_t(n));
  const size_t slash = t.rfind('/');
  return slash == std::string::npos ? t.substr(0, t.find('[')) : t.substr(slash + 1);
}

constexpr int kSignal = 36;  // SIGRTMIN+2: neither glibc's, nor the shim's, nor the target's own

class Objects {
 public:
  Objects(const std::string& list, const std::string& dir) : list_(list), dir_(dir) {}

  void setup() {
    if (want("pipe")) {
      if (pipe(pipe_)) broken("pipe");
      pipe_dup_ = dup(pipe_[0]);
      fcntl(pipe_[1], F_SETFL, O_NONBLOCK);
      write_all(pipe_[1], record('p', -1));
    }
    if (want("fifo")) {
      const std::string p = dir_ + "/fifo";
      unlink(p.c_str());
      if (mkfifo(p.c_str(), 0600)) broken("mkfifo");
      fifo_[0] = open(p.c_str(), O_RDONLY | O_NONBLOCK);
      fifo_[1] = open(p.c_str(), O_WRONLY);
      if (fifo_[0] < 0 || fifo_[1] < 0) broken("open fifo");
      write_all(fifo_[1], record('f', -1));
    }
    if (want("stream")) pair(SOCK_STREAM, stream_, 's');
    if (want("seqpacket")) pair(SOCK_SEQPACKET, seqpacket_, 'q');
    if (want("dgram")) {
      if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram_)) broken("socketpair");
    }
    if (want("dgram-server")) {
      // A named datagram socket others connect to (Linux marks it established, with no peer of
      // its own): new sockets connect to it at every step, before and after a resume. One client
      // stays connected; another sent a message and was closed.
      sockaddr_un a = unix_address("dgram-server");
      unlink(a.sun_path);
      dgram_server_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (bind(dgram_server_, reinterpret_cast<sockaddr*>(&a), sizeof a)) broken("bind dgram-server");
      dgram_client_ = socket(AF_UNIX, SOCK_DGRAM, 0);
      const int gone = socket(AF_UNIX, SOCK_DGRAM, 0);
      if (connect(dgram_client_, reinterpret_cast<sockaddr*>(&a), sizeof a) ||
          connect(gone, reinterpret_cast<sockaddr*>(&a), sizeof a)) {
        broken("connect dgram-server");
      }
      write_all(gone, record('k', -1));
      close(gone);
    }
    if (want("closed-peer")) {
      // A stream whose peer is gone with bytes still queued: they are read, then the end.
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) broken("socketpair");
      std::string all;
      for (int i = 0; i < 64; i++) all += record('c', i);
      write_all(sv[1], all);
      close(sv[1]);
      closed_peer_ = sv[0];
    }
    if (want("listen")) {
      sockaddr_un a = unix_address("listener");
      unlink(a.sun_path);
      listener_ = socket(AF_UNIX, SOCK_STREAM, 0);
      if (bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) || listen(listener_, 4)) broken("listen");
      client_ = socket(AF_UNIX, SOCK_STREAM, 0);
      if (connect(client_, reinterpret_cast<sockaddr*>(&a), sizeof a)) broken("connect");
      accepted_ = accept(listener_, nullptr, nullptr);
      waiting_ = socket(AF_UNIX, SOCK_STREAM, 0);  // stays in the listener's queue until the end
      if (accepted_ < 0 || connect(waiting_, reinterpret_cast<sockaddr*>(&a), sizeof a)) broken("accept");
      write_all(client_, record('l', -1));
    }
    if (want("tcp")) {
      tcp_ = socket(AF_INET, SOCK_STREAM, 0);
      const int one = 1;
      setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a = loopback();
      socklen_t n = sizeof a;
      if (bind(tcp_, reinterpret_cast<sockaddr*>(&a), n) || listen(tcp_, 8) ||
          getsockname(tcp_, reinterpret_cast<sockaddr*>(&tcp_address_), &n)) {
        broken("tcp listen");
      }
    }
    if (want("udp")) {
      udp_ = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in a = loopback();
      socklen_t n = sizeof a;
      if (bind(udp_, reinterpret_cast<sockaddr*>(&a), n) || getsockname(udp_, reinterpret_cast<sockaddr*>(&udp_address_), &n)) {
        broken("udp bind");
      }
    }
    if (want("eventfd")) {
      eventfd_ = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
      eventfd_dup_ = fcntl(eventfd_, F_DUPFD, 100);
    }
    if (want("epoll")) {
      if (!want("pipe") || !want("eventfd")) {
        fprintf(stderr, "resume_target: epoll watches the pipe and the eventfd\n");
        exit(2);
      }
      epoll_ = epoll_create1(EPOLL_CLOEXEC);
      epoll_event e = {};
      e.events = EPOLLIN;
      e.data.u64 = 0x1111;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, pipe_[0], &e);
      e.events = EPOLLIN | EPOLLONESHOT;
      e.data.u64 = 0x2222;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, eventfd_, &e);
      // Added under a number closed since: the entry stays while pipe_[0] holds the pipe.
      const int moved = dup(pipe_[0]);
      e.events = EPOLLIN;
      e.data.u64 = 0x3333;
      if (moved < 0 || epoll_ctl(epoll_, EPOLL_CTL_ADD, moved, &e)) broken("epoll moved");
      // That number now holds the eventfd, added under it too: two entries with one number.
      e.data.u64 = 0x4444;
      if (dup2(eventfd_, moved) != moved || epoll_ctl(epoll_, EPOLL_CTL_ADD, moved, &e)) broken("epoll same number");
    }
    if (want("signalfd")) {
      sigset_t m;
      sigemptyset(&m);
      sigaddset(&m, kSignal);
      sigprocmask(SIG_BLOCK, &m, nullptr);
      signalfd_ = signalfd(-1, &m, SFD_NONBLOCK);
      raise(kSignal);  // one always pending
    }
    if (want("timerfd")) {
      long_timer_ = timerfd_create(CLOCK_MONOTONIC, 0);
      itimerspec t = {{500, 0}, {1000, 0}};
      timerfd_settime(long_timer_, 0, &t, nullptr);
      fired_timer_ = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
      itimerspec once = {{0, 0}, {0, 1}};
      timerfd_settime(fired_timer_, 0, &once, nullptr);
      pollfd p = {fired_timer_, POLLIN, 0};
      poll(&p, 1, -1);  // expired, not read: one tick waits
    }
    if (want("inotify")) {
      const std::string watched = dir_ + "/watched";
      mkdir(watched.c_str(), 0700);
      inotify_ = inotify_init1(IN_NONBLOCK);
      const int first = inotify_add_watch(inotify_, dir_.c_str(), IN_CREATE);
      inotify_rm_watch(inotify_, first);  // watch 1 removed: the next is 2
      watch_ = inotify_add_watch(inotify_, watched.c_str(), IN_CREATE | IN_DELETE);
      drain_inotify();
    }
    if (want("ghost")) {
      const std::string p = dir_ + "/ghost";
      ghost_ = open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0640);
      if (ghost_ < 0) broken("open ghost");
      fchmod(ghost_, 04640);  // set-user-ID, which a change of owner drops (zdtm file_attr)
      write_all(ghost_, std::string(5000, 'g'));
      pwrite(ghost_, "far", 3, 1 << 20);  // a hole before it
      ghost_map_ = static_cast<char*>(mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, ghost_, 0));
      if (ghost_map_ == MAP_FAILED || unlink(p.c_str())) broken("ghost");
    }
    if (want("mapped-only")) {
      // A deleted file and a memfd that no descriptor holds any more, only mappings.
      const std::string p = dir_ + "/mapped-only";
      const int fd = open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || ftruncate(fd, 3 * 4096 + 100)) broken("mapped-only");
      only_shared_ = static_cast<char*>(mmap(nullptr, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
      only_private_ = static_cast<char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096));
      if (only_shared_ == MAP_FAILED || only_private_ == MAP_FAILED) broken("mapped-only mmap");
      memcpy(only_shared_ + 4096, "file page", 9);
      memcpy(only_private_, "own page", 8);  // this mapping's copy only
      close(fd);
      unlink(p.c_str());
      const int m = memfd_create("mapped-only", 0);
      if (m < 0 || ftruncate(m, 2 * 4096)) broken("mapped-only memfd");
      only_memfd_ = static_cast<char*>(mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0));
      if (only_memfd_ == MAP_FAILED) broken("mapped-only memfd mmap");
      close(m);
    }
    if (want("memfd")) {
      memfd_ = memfd_create("resume-memfd", MFD_ALLOW_SEALING);
      if (memfd_ < 0 || ftruncate(memfd_, 3 * 4096)) broken("memfd");
      memfd_map_ = static_cast<char*>(mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0));
      if (memfd_map_ == MAP_FAILED) broken("memfd mmap");
      fcntl(memfd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    }
    if (want("posix-timer")) {
      sigevent ev = {};
      ev.sigev_notify = SIGEV_SIGNAL;
      ev.sigev_signo = kSignal + 1;
      ev.sigev_value.sival_int = 0x77;
      signal(kSignal + 1, SIG_IGN);
      if (timer_create(CLOCK_MONOTONIC, &ev, &timer_)) broken("timer_create");
      itimerspec t = {{300, 0}, {1000, 0}};
      timer_settime(timer_, 0, &t, nullptr);
      ev.sigev_notify = SIGEV_NONE;
      if (timer_create(CLOCK_REALTIME, &ev, &quiet_timer_)) broken("timer_create");
      timer_delete(quiet_timer_);  // its id stays unused: the next timer has the one after
      if (timer_create(CLOCK_REALTIME, &ev, &quiet_timer_)) broken("timer_create");
    }
    if (want("shared-anon")) {
      shared_ = static_cast<uint64_t*>(mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
      if (shared_ == MAP_FAILED) broken("shared mmap");
      // A second mapping of the same pages (what one writes, the other reads).
      shared_alias_ = static_cast<uint64_t*>(mremap(shared_, 0, 1 << 20, MREMAP_MAYMOVE));
      if (shared_alias_ == MAP_FAILED) broken("shared mremap");
    }
    if (want("sysv")) {
      const int id = shmget(IPC_PRIVATE, 1 << 16, IPC_CREAT | 0600);
      sysv_ = static_cast<uint64_t*>(shmat(id, nullptr, 0));
      if (id < 0 || sysv_ == reinterpret_cast<uint64_t*>(-1)) broken("shmget");
      shmctl(id, IPC_RMID, nullptr);
    }
    if (want("dontfork")) {
      dontfork_ = static_cast<uint64_t*>(mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      wipe_ = static_cast<uint64_t*>(mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      if (dontfork_ == MAP_FAILED || wipe_ == MAP_FAILED || madvise(dontfork_, 1 << 16, MADV_DONTFORK) ||
          madvise(wipe_, 1 << 16, MADV_WIPEONFORK)) {
        broken("madvise");
      }
    }
    if (want("advice")) {
      // How a mapping was made and advised (smaps VmFlags nr, rr, dd) is kept.
      advised_ = static_cast<char*>(mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
      if (advised_ == MAP_FAILED || madvise(advised_, 1 << 16, MADV_RANDOM) ||
          madvise(advised_, 1 << 16, MADV_DONTDUMP)) {
        broken("advice");
      }
    }
    if (want("proc-self")) {
      // The process's own /proc file: the resumed process's own again.
      proc_self_ = open("/proc/self/status", O_RDONLY);
      if (proc_self_ < 0) broken("open /proc/self/status");
    }
    if (want("deleted-cwd")) {
      const std::string gone = dir_ + "/gone";
      mkdir(gone.c_str(), 0700);
      if (chdir(gone.c_str()) || rmdir(gone.c_str())) broken("deleted cwd");
    }
  }

  void step(int s) {
    if (want("pipe")) {
      write_all(pipe_[1], record('p', s));
      printf("pipe %s flags %d\n", read_exact(s % 2 ? pipe_dup_ : pipe_[0], 8).c_str(),
             fcntl(pipe_[1], F_GETFL) & O_NONBLOCK ? 1 : 0);
    }
    if (want("fifo")) {
      write_all(fifo_[1], record('f', s));
      printf("fifo %s %s\n", read_exact(fifo_[0], 8).c_str(), fd_name(fifo_[0]).c_str());
    }
    if (want("stream")) exchange(stream_, 's', s, "stream");
    if (want("seqpacket")) exchange(seqpacket_, 'q', s, "seqpacket");
    if (want("dgram")) {
      // Two in, one out: the queue grows by one message each step.
      const std::string a = record('d', 2 * s), b = record('d', 2 * s + 1) + std::string(size_t(s), 'x');
      send(dgram_[0], a.data(), a.size(), 0);
      send(dgram_[0], b.data(), b.size(), 0);
      char buf[256];
      const ssize_t n = recv(dgram_[1], buf, sizeof buf, MSG_DONTWAIT);
      printf("dgram %.*s\n", int(n > 0 ? n : 0), buf);
    }
    if (want("dgram-server")) {
      sockaddr_un a = unix_address("dgram-server");
      const int c = socket(AF_UNIX, SOCK_DGRAM, 0);
      const int r = connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
      const std::string how = r ? strerrorname_np(errno) : "ok";
      if (!r) write_all(c, record('n', s));
      close(c);
      write_all(dgram_client_, record('k', s));
      // Two in, two out: the message of the socket closed at the start stays one ahead.
      std::string got;
      for (int k = 0; k < 2; k++) {
        char buf[64];
        const ssize_t n = recv(dgram_server_, buf, sizeof buf, MSG_DONTWAIT);
        got += " " + (n > 0 ? std::string(buf, size_t(n)) : std::string("<") + strerrorname_np(errno) + ">");
      }
      printf("dgram-server connect %s got%s\n", how.c_str(), got.c_str());
    }
    if (want("closed-peer")) printf("closed-peer %s\n", read_exact(closed_peer_, 8).c_str());
    if (want("listen")) {
      write_all(client_, record('l', s));
      const std::string got = read_exact(accepted_, 8);
      write_all(accepted_, record('a', s));
      sockaddr_un name = {};
      socklen_t n = sizeof name;
      getsockname(accepted_, reinterpret_cast<sockaddr*>(&name), &n);
      printf("listen %s %s %s\n", got.c_str(), read_exact(client_, 8).c_str(),
             std::string(name.sun_path).substr(dir_.size()).c_str());
    }
    if (want("tcp")) {
      sockaddr_in now = {};
      socklen_t n = sizeof now;
      getsockname(tcp_, reinterpret_cast<sockaddr*>(&now), &n);
      printf("tcp same address %d\n", !memcmp(&now, &tcp_address_, sizeof now));
    }
    if (want("udp")) {
      const std::string r = record('u', s);
      sendto(udp_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&udp_address_), sizeof udp_address_);
      char buf[16];
      const ssize_t n = recv(udp_, buf, sizeof buf, 0);
      printf("udp %.*s\n", int(n > 0 ? n : 0), buf);
    }
    if (want("eventfd")) {
      uint64_t two = 2, v = 0;
      write(eventfd_, &two, 8);
      const ssize_t n = read(s % 2 ? eventfd_dup_ : eventfd_, &v, 8);
      printf("eventfd %zd %llu\n", n, static_cast<unsigned long long>(v));
    }
    if (want("epoll")) {
      epoll_event e[4];
      const int n = epoll_wait(epoll_, e, 4, 0);
      std::vector<unsigned long long> data;
      for (int i = 0; i < n; i++) data.push_back(e[i].data.u64);
      std::sort(data.begin(), data.end());
      printf("epoll %d", n);
      for (auto d : data) printf(" %llx", d);
      printf("\n");
      if (s % 2) {  // re-armed every other step: the one-shot entry is disabled in between
        epoll_event again = {};
        again.events = EPOLLIN | EPOLLONESHOT;
        again.data.u64 = 0x2222;
        epoll_ctl(epoll_, EPOLL_CTL_MOD, eventfd_, &again);
      }
    }
    if (want("signalfd")) {
      raise(kSignal);
      signalfd_siginfo si = {};
      const ssize_t n = read(signalfd_, &si, sizeof si);
      printf("signalfd %zd %u\n", n, si.ssi_signo);
    }
    if (want("timerfd")) {
      itimerspec t = {};
      timerfd_gettime(long_timer_, &t);
      printf("timerfd left in range %d interval %ld\n", t.it_value.tv_sec > 900 && t.it_value.tv_sec <= 1000,
             long(t.it_interval.tv_sec));
    }
    if (want("inotify")) {
      const std::string f = dir_ + "/watched/f" + std::to_string(s);
      close(open(f.c_str(), O_CREAT | O_WRONLY, 0600));
      unlink(f.c_str());
      printf("inotify%s\n", drain_inotify().c_str());
    }
    if (want("ghost")) {
      const std::string r = record('g', s);
      pwrite(ghost_, r.data(), r.size(), 100 + 8 * s);
      char back[9] = {};
      pread(ghost_, back, 8, 100 + 8 * (s > 0 ? s - 1 : 0));
      struct stat st;
      fstat(ghost_, &st);
      printf("ghost %s map %.8s size %lld links %d mode %o %s\n", back, ghost_map_ + 100 + 8 * s,
             static_cast<long long>(st.st_size), int(st.st_nlink), unsigned(st.st_mode & 07777), fd_name(ghost_).c_str());
      ghost_map_[4096 + s] = char('A' + s);
    }
    if (want("memfd")) {
      const std::string r = record('m', s);
      pwrite(memfd_, r.data(), r.size(), 4096 + 8 * s);
      printf("memfd %.8s seals %x %s\n", memfd_map_ + 4096 + 8 * s, fcntl(memfd_, F_GET_SEALS), fd_name(memfd_).c_str());
      memfd_map_[8192 + s] = char('a' + s);
    }
    if (want("mapped-only")) {
      only_shared_[100 + s] = char('a' + s);
      only_memfd_[4096 + s] = char('A' + s);
      printf("mapped-only %.*s %.9s %.8s %.*s\n", s + 1, only_shared_ + 100, only_shared_ + 4096, only_private_, s + 1,
             only_memfd_ + 4096);
    }
    if (want("posix-timer")) {
      itimerspec t = {}, q = {};
      timer_gettime(timer_, &t);
      timer_gettime(quiet_timer_, &q);
      printf("posix-timer %ld %ld left in range %d interval %ld quiet %ld\n", long(reinterpret_cast<intptr_t>(timer_)),
             long(reinterpret_cast<intptr_t>(quiet_timer_)), t.it_value.tv_sec > 900 && t.it_value.tv_sec <= 1000,
             long(t.it_interval.tv_sec), long(q.it_value.tv_sec));
    }
    if (want("shared-anon")) {
      shared_[size_t(s) * 512] = uint64_t(s) * 7 + 1;
      uint64_t sum = 0;
      for (size_t i = 0; i < (1u << 20) / 8; i += 512) sum += shared_alias_[i];
      printf("shared-anon %llu\n", static_cast<unsigned long long>(sum));
    }
    if (want("sysv")) {
      sysv_[size_t(s) * 64] = uint64_t(s) + 3;
      uint64_t sum = 0;
      for (size_t i = 0; i < (1u << 16) / 8; i++) sum += sysv_[i];
      printf("sysv %llu\n", static_cast<unsigned long long>(sum));
    }
    if (want("dontfork")) {
      dontfork_[s] = uint64_t(s) + 1;
      wipe_[s] = uint64_t(s) + 2;
      const pid_t child = fork();
      if (child == 0) _exit(wipe_[s] == 0 ? 0 : 1);  // wiped in a child
      int status = 0;
      waitpid(child, &status, 0);
      printf("dontfork %llu %llu wiped in child %d\n", static_cast<unsigned long long>(dontfork_[s]),
             static_cast<unsigned long long>(wipe_[s]), WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    if (want("advice")) {
      advised_[s * 4096] = char(s + 1);
      printf("advice %s\n", vm_flags(advised_, {"nr", "rr", "dd"}).c_str());
    }
    if (want("proc-self")) {
      char buf[4096];
      const ssize_t n = pread(proc_self_, buf, sizeof buf - 1, 0);
      buf[n > 0 ? n : 0] = 0;
      const char* pid = strstr(buf, "\nPid:\t");
      printf("proc-self %s own pid %d\n", fd_name(proc_self_).c_str(), pid && atoi(pid + 6) == int(getpid()));
    }
    if (want("deleted-cwd")) {
      char buf[4096];
      const bool got = getcwd(buf, sizeof buf) != nullptr;
      printf("deleted-cwd getcwd %d errno %s\n", got, got ? "-" : strerrorname_np(errno));
    }
  }

  void finish() {
    if (want("listen")) {
      const int late = accept(listener_, nullptr, nullptr);
      write_all(waiting_, record('w', 0));
      printf("listen late %s\n", late >= 0 ? read_exact(late, 8).c_str() : strerror(errno));
    }
    if (want("tcp")) {
      const int c = socket(AF_INET, SOCK_STREAM, 0);
      const bool connected = connect(c, reinterpret_cast<sockaddr*>(&tcp_address_), sizeof tcp_address_) == 0;
      const int a = accept(tcp_, nullptr, nullptr);
      write_all(c, record('t', 0));
      printf("tcp connected %d %s\n", connected, a >= 0 ? read_exact(a, 8).c_str() : "-");
    }
    if (want("eventfd")) {
      uint64_t v;
      int n = 0;
      while (read(eventfd_, &v, 8) == 8) n++;
      printf("eventfd left %d\n", n);
    }
    if (want("timerfd")) {
      uint64_t ticks = 0;
      const ssize_t n = read(fired_timer_, &ticks, 8);
      printf("timerfd fired %zd %llu\n", n, static_cast<unsigned long long>(ticks));
    }
    if (want("closed-peer")) {
      char buf[1024];
      ssize_t n, rest = 0;
      while ((n = read(closed_peer_, buf, sizeof buf)) > 0) rest += n;
      printf("closed-peer rest %zd then %zd\n", rest, n);
    }
    if (want("dgram-server")) {
      char buf[64];
      const ssize_t n = recv(dgram_server_, buf, sizeof buf, MSG_DONTWAIT);
      printf("dgram-server left %.*s\n", int(n > 0 ? n : 0), buf);
    }
    if (want("dgram")) {
      char buf[256];
      int n = 0;
      while (recv(dgram_[1], buf, sizeof buf, MSG_DONTWAIT) > 0) n++;
      printf("dgram left %d\n", n);
    }
  }

 private:
  bool want(const char* kind) const { return wanted(list_, kind); }

  sockaddr_un unix_address(const char* name) const {
    sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", dir_.c_str(), name);
    return a;
  }

  static sockaddr_in loopback() {
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }

  void pair(int type, int* sv, char kind) {
    if (socketpair(AF_UNIX, type, 0, sv)) broken("socketpair");
    write_all(sv[0], record(kind, -1));
    write_all(sv[1], record(char(kind - 32), -1));
  }

  // A record each way; what is read is the one written a step before.
  void exchange(int* sv, char kind, int s, const char* name) {
    write_all(sv[0], record(kind, s));
    write_all(sv[1], record(char(kind - 32), s));
    const std::string a = read_exact(sv[1], 8), b = read_exact(sv[0], 8);
    printf("%s %s %s\n", name, a.c_str(), b.c_str());
  }

  // Which of the VmFlags names the mapping at p has ("nr rr" ...), from /proc/self/smaps.
  static std::string vm_flags(const void* p, std::initializer_list<const char*> names) {
    FILE* f = fopen("/proc/self/smaps", "r");
    if (!f) broken("smaps");
    char line[1024];
    bool inside = false;
    std::string out;
    while (fgets(line, sizeof line, f)) {
      unsigned long start = 0, end = 0;
      if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {  // a mapping's first line
        inside = uintptr_t(p) >= start && uintptr_t(p) < end;
      } else if (inside && !strncmp(line, "VmFlags:", 8)) {
        for (const char* n : names) {
          if (strstr(line, (std::string(" ") + n).c_str())) out += std::string(out.empty() ? "" : " ") + n;
        }
        break;
      }
    }
    fclose(f);
    return out.empty() ? "-" : out;
  }

  std::string drain_inotify() {
    std::string out;
    alignas(inotify_event) char buf[4096];
    for (;;) {
      const ssize_t n = read(inotify_, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t at = 0; at < n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buf + at);
        out += " " + std::to_string(e->wd) + ":" + std::to_string(e->mask) + ":" + (e->len ? e->name : "");
        at += ssize_t(sizeof *e + e->len);
      }
    }
    return out;
  }

  std::string list_, dir_;
  int pipe_[2] = {-1, -1}, pipe_dup_ = -1, fifo_[2] = {-1, -1};
  int stream_[2] = {-1, -1}, seqpacket_[2] = {-1, -1}, dgram_[2] = {-1, -1}, closed_peer_ = -1;
  int listener_ = -1, client_ = -1, accepted_ = -1, waiting_ = -1;
  int tcp_ = -1, udp_ = -1;
  int dgram_server_ = -1, dgram_client_ = -1;
  sockaddr_in tcp_address_ = {}, udp_address_ = {};
  int eventfd_ = -1, eventfd_dup_ = -1, epoll_ = -1, signalfd_ = -1, long_timer_ = -1, fired_timer_ = -1;
  int inotify_ = -1, watch_ = -1;
  int ghost_ = -1, memfd_ = -1;
  char* ghost_map_ = nullptr;
  char* advised_ = nullptr;
  int proc_self_ = -1;
  char* memfd_map_ = nullptr;
  char* only_shared_ = nullptr;
  char* only_private_ = nullptr;
  char* only_memfd_ = nullptr;
  timer_t timer_ = {}, quiet_timer_ = {};
  uint64_t* shared_ = nullptr;
  uint64_t* shared_alias_ = nullptr;
  uint64_t* sysv_ = nullptr;
  uint64_t* dontfork_ = nullptr;
  uint64_t* wipe_ = nullptr;
};

}  // namespace held
