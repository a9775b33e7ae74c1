// Puts itself in one state a checkpoint must refuse, then asks for the checkpoint (SIGUSR2) and
// waits on stdin: `checkpoint_refusals MODE [--no-signal]`. With --no-signal (no checkpoint) it
// prints "ran MODE" and exits 0.
//
// Modes: netlink (a netlink socket), pipe-outside (a pipe whose write end the caller holds),
// tcp-connection (an established TCP connection), scm-rights (a descriptor in flight on a unix
// socket), inotify-queued (inotify events not read yet), deleted-linked (a deleted file still
// linked under another name), child (a child made by posix_spawn, still running), zombie-group (a zombie child in a
// process group of its own), zombie-clone (a zombie child made by clone with SIGURG as its exit
// signal), sysv-kept (a SysV segment not removed with IPC_RMID),
// thread-timer (a SIGEV_THREAD POSIX timer), seccomp, blocked-signal (a thread blocks the stop
// signal with a raw system call), leader-exited (the main thread has called pthread_exit), zone
// (memory where the restorer runs), close-all (every descriptor above 2 closed, the shim's too).
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

namespace {

const char* g_mode = "";
bool g_signal = true;
int g_segment = -1;  // sysv-kept: removed when the program ends without a checkpoint

void wait_for_input() {
  char c;
  while (read(0, &c, 1) < 0) {
  }
}

void checkpoint_and_wait() {
  if (g_signal) raise(SIGUSR2);
  wait_for_input();
  if (g_segment >= 0) shmctl(g_segment, IPC_RMID, nullptr);
  printf("ran %s\n", g_mode);
  fflush(stdout);
}

void* blocker(void*) {
  uint64_t set = uint64_t(1) << (38 - 1);  // the shim's stop signal, behind libc's back
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, nullptr, 8);
  for (;;) pause();
}

void* late_worker(void*) {
  sleep(1);
  checkpoint_and_wait();
  exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  g_mode = argv[1];
  g_signal = !(argc > 2 && !strcmp(argv[2], "--no-signal"));
  const std::string_view m = g_mode;
  if (m == "netlink") {
    if (socket(AF_NETLINK, SOCK_RAW, 0) < 0) return 3;
  } else if (m == "pipe-outside") {
    if (dup(0) != 3) return 3;  // the caller's pipe: its write end is the caller's
  } else if (m == "tcp-connection") {
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    const int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l != 3 || bind(l, reinterpret_cast<sockaddr*>(&a), n) || listen(l, 1) ||
        getsockname(l, reinterpret_cast<sockaddr*>(&a), &n)) {
      return 3;
    }
    const int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&a), n) || accept(l, nullptr, nullptr) < 0) return 3;
  } else if (m == "scm-rights") {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || sv[0] != 3) return 3;
    char byte = 'x';
    iovec iov = {&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    const int passed = 1;
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
    if (sendmsg(sv[1], &msg, 0) != 1) return 3;
  } else if (m == "inotify-queued") {
    static char dir[] = "/tmp/uffdlazy-refusal-XXXXXX";
    const int fd = inotify_init1(0);
    if (fd != 3 || !mkdtemp(dir) || inotify_add_watch(fd, dir, IN_DELETE_SELF) < 0 || rmdir(dir)) return 3;
  } else if (m == "deleted-linked") {
    // The test removes the directory (and the second name) afterwards.
    static char dir[] = "/tmp/uffdlazy-refusal-linked-XXXXXX";
    if (!mkdtemp(dir)) return 3;
    const std::string first = std::string(dir) + "/first", second = std::string(dir) + "/second";
    const int fd = open(first.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd != 3 || link(first.c_str(), second.c_str()) || unlink(first.c_str())) return 3;
  } else if (m == "child") {
    // Made by posix_spawn (vfork-like: not a member of the checkpoint's tree), not holding the
    // test's pipes open after the parent is gone.
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++) posix_spawn_file_actions_addclose(&fa, fd);
    pid_t pid;
    char sleep_path[] = "/bin/sleep", three[] = "3";
    char* args[] = {sleep_path, three, nullptr};
    if (posix_spawn(&pid, sleep_path, &fa, nullptr, args, environ)) return 3;
  } else if (m == "zombie-group") {
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      _exit(3);
    }
    siginfo_t si;
    if (pid < 0 || waitid(P_PID, id_t(pid), &si, WEXITED | WNOWAIT)) return 3;
  } else if (m == "zombie-clone") {
    // The raw system call: no fork handlers, the child only exits.
    const long pid = syscall(SYS_clone, long(SIGURG), 0L, 0L, 0L, 0L);
    if (pid == 0) syscall(SYS_exit, 4);
    siginfo_t si;
    if (pid < 0 || waitid(P_PID, id_t(pid), &si, WEXITED | WNOWAIT | __WALL)) return 3;
  } else if (m == "sysv-kept") {
    // Not removed (IPC_RMID): reachable by its id by any process; removed once the test is over.
    int id = shmget(IPC_PRIVATE, 1 << 16, IPC_CREAT | 0600);
    if (id < 0 || shmat(id, nullptr, 0) == reinterpret_cast<void*>(-1)) return 3;
    g_segment = id;
  } else if (m == "thread-timer") {
    timer_t t;
    sigevent ev = {};
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = [](sigval) {};
    if (timer_create(CLOCK_MONOTONIC, &ev, &t)) return 3;
  } else if (m == "seccomp") {
    sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog prog = {1, allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) return 3;
  } else if (m == "blocked-signal") {
    pthread_t t;
    pthread_create(&t, nullptr, blocker, nullptr);
    usleep(100000);
  } else if (m == "leader-exited") {
    pthread_t t;
    pthread_create(&t, nullptr, late_worker, nullptr);
    pthread_exit(nullptr);
  } else if (m == "zone") {
    if (mmap(reinterpret_cast<void*>(0x100000000000ull), 1 << 16, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED) {
      return 3;
    }
  } else if (m == "guard-page") {
    // A guard page (Linux 6.13) in the middle of private anonymous memory: it faults on access.
    char* p = static_cast<char*>(mmap(nullptr, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return 3;
    memset(p, 1, 4 * 4096);
    if (madvise(p + 4096, 4096, 102 /* MADV_GUARD_INSTALL */)) return 3;
  } else if (m == "shared-private") {
    // Shared anonymous memory mapped again privately through /proc/self/map_files (which needs
    // CAP_CHECKPOINT_RESTORE): the private mapping's unchanged pages follow the shared ones.
    char* shared = static_cast<char*>(mmap(nullptr, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (shared == MAP_FAILED) return 3;
    char path[128];
    snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", reinterpret_cast<unsigned long>(shared),
             reinterpret_cast<unsigned long>(shared) + 4 * 4096);
    const int fd = open(path, O_RDWR);
    if (fd < 0 || mmap(nullptr, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) == MAP_FAILED) return 3;
    close(fd);
  } else if (m == "close-all") {
    syscall(SYS_close_range, 3u, ~0u, 0u);
  } else {
    fprintf(stderr, "checkpoint_refusals: unknown mode %s\n", g_mode);
    return 2;
  }
  checkpoint_and_wait();
  return 0;
}
