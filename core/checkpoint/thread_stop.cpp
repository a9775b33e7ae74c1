#include "core/checkpoint/thread_stop.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/hidden_thread.h"
#include "core/base/mono_clock.h"
#include "core/base/dir_entries.h"
#include "core/base/raw_syscall.h"
#include "core/base/shim_signals.h"
#include "core/checkpoint/jump_context.h"
#include "core/checkpoint/process_settings.h"
#include "core/checkpoint/resume_block.h"
#include "core/checkpoint/thread_record.h"
#include "core/monitor/monitor.h"

// glibc's own sigaction (public ABI since 2.0): the shim's handlers are installed past its
// interposer (preload/signal_interposers.cpp), which guards the program's.
extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kRecordCapacity = kMaxThreads + 8;  // the shim's threads on top

struct StopState {
  std::atomic<uint32_t> stopping{0};
  std::atomic<uint32_t> release_gen{0};
  std::atomic<uint32_t> slots_used{0};
  std::atomic<uint32_t> parked{0};
  std::atomic<uint32_t> monitor_parked{0};
  snap::ThreadRecord* records = nullptr;
  long* signalled = nullptr;
  uint32_t signalled_count = 0;
  void (*monitor_hook)() = nullptr;
};
constinit StopState g;
constinit bool g_reserved = false;

void futex_wake_all(std::atomic<uint32_t>* w) { sys::futex(w, FUTEX_WAKE_PRIVATE, 1 << 30); }

// Waits until *w differs from `seen` or about `ns` passed.
void futex_wait_for(std::atomic<uint32_t>* w, uint32_t seen, uint64_t ns) {
  timespec ts = {time_t(ns / 1000000000ull), long(ns % 1000000000ull)};
  sys::futex(w, FUTEX_WAIT_PRIVATE, int(seen), &ts);
}

snap::ThreadRecord* claim_record() {
  const uint32_t i = g.slots_used.fetch_add(1, std::memory_order_acq_rel);
  if (i >= kRecordCapacity) return nullptr;
  return &g.records[i];
}

// Parks the calling thread at a save point until the checkpoint releases it, or until it arrives
// there again in a resumed process (then returns true).
bool park_here(snap::ThreadRole role, void* frame, std::atomic<uint32_t>* parked_count) {
  const uint32_t gen = g.release_gen.load(std::memory_order_acquire);
  snap::ThreadRecord* r = claim_record();
  if (!r) {
    // More threads than records: the checkpoint sees the overflow and gives up.
    parked_count->fetch_add(1, std::memory_order_acq_rel);
    futex_wake_all(parked_count);
    while (g.release_gen.load(std::memory_order_acquire) == gen) sys::futex(&g.release_gen, FUTEX_WAIT_PRIVATE, int(gen));
    return false;
  }
  count_shim_signal();
  record_this_thread(r, role);
  r->signal_frame = uint64_t(frame);
  if (uffdlazy_save_context(&r->context) != 0) {
    // Resumed, with a new thread id: the area it registered itself is known by that one now.
    if (r->rseq_area) note_rseq(long(r->rseq_area), r->rseq_length, 0, r->rseq_signature, 0);
    return true;
  }
  parked_count->fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(parked_count);
  while (g.release_gen.load(std::memory_order_acquire) == gen) sys::futex(&g.release_gen, FUTEX_WAIT_PRIVATE, int(gen));
  return false;
}

void on_stop_signal(int, siginfo_t* si, void* frame) {
  // Only our own tgkill of a checkpoint under way; anything else is ignored.
  if (si->si_code != SI_TKILL || si->si_pid != sys::getpid() || !g.stopping.load(std::memory_order_acquire)) return;
  const bool leader = sys::gettid() == sys::getpid();
  if (park_here(leader ? snap::ThreadRole::kLeader : snap::ThreadRole::kApp, frame, &g.parked)) program_thread_resumed();
}

void park_monitor_here(void*) {
  if (park_here(snap::ThreadRole::kMonitor, nullptr, &g.monitor_parked)) {
    if (g.monitor_hook) g.monitor_hook();
  }
}

// Calls fn(tid) for every thread of the process; false if /proc/self/task could not be read.
template <class Fn>
bool for_each_task(Fn&& fn) {
  long dir = sys::openat(AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  for_each_dir_entry(int(dir), [&](const char* name) {
    long tid = 0;
    for (const char* p = name; *p >= '0' && *p <= '9'; p++) tid = tid * 10 + (*p - '0');
    if (tid > 0) fn(tid);
  });
  sys::close(int(dir));
  return true;
}

bool signalled(long tid) {
  for (uint32_t i = 0; i < g.signalled_count; i++) {
    if (g.signalled[i] == tid) return true;
  }
  return false;
}

bool alive(long tid) { return sys::call6(SYS_tgkill, sys::getpid(), tid, 0) == 0; }

// A thread that has exited but is still listed (the leader waits for the others as a zombie).
bool exited(long tid) {
  char path[64] = "/proc/self/task/";
  size_t n = 16;
  char digits[24];
  size_t k = 0;
  for (long v = tid; v; v /= 10) digits[k++] = char('0' + v % 10);
  while (k) path[n++] = digits[--k];
  __builtin_memcpy(path + n, "/stat", 6);
  char buf[512];
  long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  long r = sys::read(int(fd), buf, sizeof buf - 1);
  sys::close(int(fd));
  if (r <= 0) return true;
  buf[r] = 0;
  const char* p = buf + r;
  while (p > buf && p[-1] != ')') p--;  // the state follows the name
  while (*p == ' ') p++;
  return *p == 'Z' || *p == 'X';
}

bool recorded(long tid) {
  const uint32_t n = g.slots_used.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n && i < kRecordCapacity; i++) {
    if (g.records[i].old_tid == uint32_t(tid)) return true;
  }
  return false;
}

}  // namespace

bool prepare_thread_stop() {
  if (g.records) return true;
  const uint64_t bytes = uint64_t(kRecordCapacity) * (sizeof(snap::ThreadRecord) + sizeof(long));
  long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  g.records = reinterpret_cast<snap::ThreadRecord*>(m);
  g.signalled = reinterpret_cast<long*>(g.records + kRecordCapacity);
  struct sigaction sa = {};
  sa.sa_sigaction = on_stop_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (__sigaction(kStopSignal, &sa, nullptr) != 0) return false;
  g_reserved = true;
  return true;
}

bool stop_signal_reserved() { return g_reserved; }

bool stop_program_threads(uint64_t timeout_ns, LineWriter* why) {
  g.slots_used.store(0, std::memory_order_release);
  g.parked.store(0, std::memory_order_release);
  g.monitor_parked.store(0, std::memory_order_release);
  g.signalled_count = 0;
  g.stopping.store(1, std::memory_order_release);
  const long pid = sys::getpid();
  const uint64_t deadline = mono_now_ns() + timeout_ns;
  bool overflow = false;
  for (;;) {
    bool found_new = false;
    bool listed = for_each_task([&](long tid) {
      if (is_hidden_thread(tid) || signalled(tid) || exited(tid)) return;
      if (g.signalled_count == kMaxThreads) {
        overflow = true;
        return;
      }
      if (sys::call6(SYS_tgkill, pid, tid, kStopSignal) == 0) {
        g.signalled[g.signalled_count++] = tid;
        found_new = true;
      }
    });
    if (!listed || overflow) {
      why->str(overflow ? "more than 4096 threads" : "cannot list the process's threads (/proc/self/task)");
      release_threads();
      return false;
    }
    const uint32_t parked = g.parked.load(std::memory_order_acquire);
    uint32_t gone = 0;
    for (uint32_t i = 0; i < g.signalled_count; i++) gone += !alive(g.signalled[i]);
    if (!found_new && parked + gone >= g.signalled_count) break;
    if (mono_now_ns() > deadline) {
      why->str("threads did not stop within ").u64(timeout_ns / 1000000).str(" ms (they block the checkpoint signal ")
          .i64(kStopSignal).str(", or sleep uninterruptibly):");
      for (uint32_t i = 0; i < g.signalled_count; i++) {
        if (alive(g.signalled[i]) && !recorded(g.signalled[i])) why->str(" ").i64(g.signalled[i]);
      }
      release_threads();
      return false;
    }
    futex_wait_for(&g.parked, parked, 2000000);
  }
  if (g.slots_used.load(std::memory_order_acquire) > kMaxThreads) {
    why->str("more than 4096 threads");
    release_threads();
    return false;
  }
  return true;
}

bool park_monitor(Monitor* monitor, uint64_t timeout_ns, LineWriter* why) {
  if (!monitor->running()) {
    why->str("the shim's monitor is not running");
    return false;
  }
  monitor->run_on_monitor(park_monitor_here, nullptr);
  const uint64_t deadline = mono_now_ns() + timeout_ns;
  while (!g.monitor_parked.load(std::memory_order_acquire)) {
    if (mono_now_ns() > deadline || !monitor->running()) {
      why->str("the shim's monitor did not stop");
      return false;
    }
    futex_wait_for(&g.monitor_parked, 0, 2000000);
  }
  return true;
}

snap::ThreadRecord* record_checkpoint_thread() {
  snap::ThreadRecord* r = claim_record();
  if (r) record_this_thread(r, snap::ThreadRole::kCapture);
  return r;
}

void release_threads() {
  g.stopping.store(0, std::memory_order_release);
  g.release_gen.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(&g.release_gen);
}

uint32_t thread_count() {
  const uint32_t n = g.slots_used.load(std::memory_order_acquire);
  return n < kRecordCapacity ? n : kRecordCapacity;
}

const snap::ThreadRecord* thread_records() { return g.records; }

bool leader_stopped() {
  const uint32_t n = thread_count();
  for (uint32_t i = 0; i < n; i++) {
    if (g.records[i].role == uint32_t(snap::ThreadRole::kLeader)) return true;
  }
  return false;
}

void set_monitor_resumed_hook(void (*hook)()) { g.monitor_hook = hook; }

void program_thread_resumed() {
  ResumeBlock& b = resume_block();
  __atomic_fetch_sub(&b.threads_in_zone, 1, __ATOMIC_ACQ_REL);
  sys::futex(&b.threads_in_zone, FUTEX_WAKE_PRIVATE, 1 << 30);
}

}  // namespace uffdlazy::ckpt
