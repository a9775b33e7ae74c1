#include "core/base/program_end_watch.h"

#include <cerrno>
#include <climits>
#include <ctime>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#include "core/base/dir_entries.h"
#include "core/base/private_fd_table.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kStackSize = 256 * 1024;  // `ended` writes the shim's exit outputs on it
constexpr int kWatched = 64;               // pidfds polled at once; more threads: the rest later

// Linux 6.9: a pidfd of one thread, readable once that thread has ended.
constexpr unsigned kPidfdThread = O_EXCL;

// Linux 6.15 (uapi/linux/pidfd.h, its first published size): an ended task's exit code.
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
};
static_assert(sizeof(PidfdInfo) == 64);
constexpr uint64_t kPidfdInfoExit = 1u << 3;
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);

// Decimal digits of [p, end) as a number; -1 if there are none or something else.
long parse_decimal(const char* p, const char* end) {
  if (p == end) return -1;
  long v = 0;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  return v;
}

// The program's threads still running (the ids in /proc/self/task but the main thread's and the
// shim's): up to `cap` of them in `tids`. Returns how many there are, or -1 if /proc cannot say.
int program_threads(long* tids, int cap) {
  const long dir = sys::openat(AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  const long leader = sys::getpid();
  int count = 0;
  const bool whole = for_each_dir_entry(int(dir), [&](const char* name) {
    const long tid = parse_decimal(name, name + __builtin_strlen(name));
    if (tid <= 0 || tid == leader || is_hidden_thread(tid)) return;
    if (count < cap) tids[count] = tid;
    count++;
  });
  if (!whole) count = -1;
  sys::close(int(dir));
  return count;
}

// The exit status of a thread whose pidfd has become readable (it has ended), or -1 if the
// kernel does not tell (before Linux 6.15). The kernel records it a moment after the pidfd
// becomes readable, when it releases the thread.
int ended_thread_status(int pidfd) {
  for (int tries = 0; tries < 10000; tries++) {
    PidfdInfo info = {};
    info.mask = kPidfdInfoExit;
    if (sys::ioctl(pidfd, kPidfdGetInfo, &info) < 0) return -1;
    if (info.mask & kPidfdInfoExit) return info.exit_code;
    sys::call6(SYS_sched_yield);
  }
  return -1;
}

}  // namespace

bool ProgramEndWatch::arm() {
  if (sys::gettid() != sys::getpid()) return false;
  int* word = nullptr;
  if (sys::call6(SYS_prctl, PR_GET_TID_ADDRESS, reinterpret_cast<long>(&word)) != 0 || !word) return false;
  leader_tid_word_ = word;
  return true;
}

bool ProgramEndWatch::start(Ended ended, int keep_fd) {
  if (!leader_tid_word_ || thread_.started()) return false;
  ended_ = ended;
  keep_fd_ = keep_fd;
  __atomic_store_n(&stop_, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&left_, 0, __ATOMIC_RELEASE);
  return thread_.start(thread_main, this, kStackSize);
}

void ProgramEndWatch::stop() {
  if (!thread_.started()) return;
  __atomic_store_n(&stop_, 1, __ATOMIC_SEQ_CST);
  // The watch may have looked at stop_ just before it was set and not be asleep on the word yet:
  // a single wake would then be lost and it would sleep for ever (and this join with it). So wake
  // until it says it has left. Anyone else waiting on the word (a pthread_join of the main thread)
  // wakes, finds the main thread still running and waits again.
  const timespec a_moment = {0, 1000 * 1000};
  while (!__atomic_load_n(&left_, __ATOMIC_ACQUIRE)) {
    sys::futex(leader_tid_word_, FUTEX_WAKE, INT_MAX);
    sys::futex(&left_, FUTEX_WAIT_PRIVATE, 0, &a_moment);
  }
  thread_.join();
}

void ProgramEndWatch::forget() {
  thread_.forget();
  leader_tid_word_ = nullptr;
  __atomic_store_n(&stop_, 0, __ATOMIC_RELEASE);
}

void* ProgramEndWatch::thread_main(void* self) {
  static_cast<ProgramEndWatch*>(self)->run();
  return nullptr;
}

int ProgramEndWatch::main_thread_status() const {
  // Field 52 (exit_code) of /proc/self/stat, whose fields describe the main thread; the name in
  // parentheses may hold anything, so counting starts after its closing parenthesis.
  char text[1024];
  const long fd = sys::openat(AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const long n = sys::read(int(fd), text, sizeof text - 1);
  sys::close(int(fd));
  if (n <= 0) return 0;
  const char* end = text + n;
  const char* p = end;
  while (p > text && p[-1] != ')') p--;
  int field = 2;
  while (p < end) {
    while (p < end && *p == ' ') p++;
    const char* start = p;
    while (p < end && *p != ' ' && *p != '\n') p++;
    if (++field == 52) {
      const long v = parse_decimal(start, p);
      return v < 0 ? 0 : int(v);
    }
    if (p < end && *p == '\n') break;
  }
  return 0;
}

void ProgramEndWatch::run() {
  name_this_thread("uffdlazy-end");
  take_private_descriptor_table(keep_fd_, -1);
  // The main thread: the kernel writes 0 to its word and wakes it when it exits (glibc writes -1
  // once another thread has joined it). A running thread's id is positive.
  for (;;) {
    const int tid = __atomic_load_n(leader_tid_word_, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&stop_, __ATOMIC_SEQ_CST)) {
      __atomic_store_n(&left_, 1, __ATOMIC_RELEASE);
      sys::futex(&left_, FUTEX_WAKE_PRIVATE, 1);
      return;
    }
    if (tid <= 0) break;
    sys::futex(leader_tid_word_, FUTEX_WAIT, tid);  // shared, as the kernel's wake at exit
  }
  // The kernel wakes one waiter: a pthread_join of the main thread may be waiting too.
  sys::futex(leader_tid_word_, FUTEX_WAKE, INT_MAX);
  int last_status = main_thread_status();
  long tids[kWatched];
  pollfd fds[kWatched];
  for (;;) {
    const int count = program_threads(tids, kWatched);
    if (count < 0) return;  // without /proc the end cannot be told: the process stays as it was
    if (count == 0) ended_(last_status);
    int watched = 0;
    bool without_pidfds = false;
    for (int i = 0; i < count && i < kWatched; i++) {
      const long fd = sys::call6(SYS_pidfd_open, tids[i], kPidfdThread);
      if (fd >= 0) {
        fds[watched++] = {int(fd), POLLIN, 0};
      } else if (fd == -EINVAL || fd == -ENOSYS) {
        without_pidfds = true;
      }
      // ESRCH: it ended meanwhile; the next look sees who is left.
    }
    if (without_pidfds) {
      timespec pause = {0, 100 * 1000 * 1000};
      sys::call6(SYS_nanosleep, reinterpret_cast<long>(&pause), 0);
    } else if (watched > 0) {
      while (sys::call6(SYS_ppoll, reinterpret_cast<long>(fds), watched, 0, 0, 8) == -EINTR) {
      }
      for (int i = 0; i < watched; i++) {
        if (!(fds[i].revents & POLLIN)) continue;
        const int status = ended_thread_status(fds[i].fd);
        last_status = status >= 0 ? status : 0;
      }
    }
    for (int i = 0; i < watched; i++) sys::close(fds[i].fd);
  }
}

}  // namespace uffdlazy
