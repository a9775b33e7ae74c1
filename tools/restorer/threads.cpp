// The threads: one clone per saved thread (the restorer itself becomes the leader), each setting
// its own kernel state (tid cache via set_tid_address, robust list, rseq, name), then waiting.
// They are let go in the order resume_protocol.h describes; each ends in the shim, at its save
// point, with its TLS base set.
#include <cerrno>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <asm/prctl.h>

#include "tools/restorer/restorer.h"

namespace restorer {

void monitor_descriptors(int image_fd);

namespace {

constexpr uint64_t kStackBytes = 64 * 1024;
constexpr uint32_t kMaxThreads = 4104;

struct Slot {
  const snap::ThreadRecord* record;
  uint32_t go;
  long tid;  // the new thread's
};
Slot g_slots[kMaxThreads];
uint32_t g_ready = 0;
int g_image_fd = -1;
int g_uffd = -1;

void futex_wait(uint32_t* word, uint32_t value) { sys::futex(word, FUTEX_WAIT, int(value)); }
void futex_wake(uint32_t* word) { sys::futex(word, FUTEX_WAKE, 1 << 30); }

void set_kernel_state(const snap::ThreadRecord& t) {
  if (t.tid_address) {
    // The kernel clears this word when the thread exits (pthread_join waits on it); glibc also
    // keeps the thread's id there.
    const long tid = sys::call6(SYS_set_tid_address, long(t.tid_address));
    *reinterpret_cast<int32_t*>(t.tid_address) = int32_t(tid);
  }
  if (t.robust_head) sys::call6(SYS_set_robust_list, long(t.robust_head), long(t.robust_length));
  if (t.rseq_area) {
    *reinterpret_cast<uint64_t*>(t.rseq_area + 8) = 0;  // no critical section in progress
    long r = sys::call6(SYS_rseq, long(t.rseq_area), t.rseq_length, 0, t.rseq_signature);
    if (r < 0) {  // the image was checked: this kernel refuses what the one of the checkpoint took
      Line l;
      l.s("uffdlazy: resume ").s(g_options.image).s(": warning: the restartable-sequence area of thread ")
          .u(t.old_tid).s(" not registered again: ").err(r);
      l.emit();
    }
  }
  sys::call6(SYS_prctl, PR_SET_NAME, long(t.comm));
  restore_thread_settings(t);
}

[[noreturn]] void go_on(const snap::ThreadRecord& t) {
  sys::call6(SYS_arch_prctl, ARCH_SET_FS, long(t.fs_base));
  if (t.gs_base) sys::call6(SYS_arch_prctl, ARCH_SET_GS, long(t.gs_base));
  restorer_jump(&t.context);
}

void thread_main(void* arg) {
  Slot* s = static_cast<Slot*>(arg);
  set_kernel_state(*s->record);
  if (s->record->role == uint32_t(snap::ThreadRole::kMonitor)) monitor_descriptors(g_image_fd);
  __atomic_fetch_add(&g_ready, 1, __ATOMIC_ACQ_REL);
  futex_wake(&g_ready);
  while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE)) futex_wait(&s->go, 0);
  go_on(*s->record);
}

void let_go(snap::ThreadRole role) {
  for (uint32_t i = 0; i < g_image.thread_count; i++) {
    if (g_slots[i].record && g_slots[i].record->role == uint32_t(role)) {
      __atomic_store_n(&g_slots[i].go, 1, __ATOMIC_RELEASE);
      futex_wake(&g_slots[i].go);
    }
  }
}

bool has_role(snap::ThreadRole role) {
  for (uint32_t i = 0; i < g_image.thread_count; i++) {
    if (g_image.thread(i).role == uint32_t(role)) return true;
  }
  return false;
}

// Waits until *word is not 0 (set by the shim), within a generous bound.
uint32_t wait_for(uint32_t* word, const char* what) {
  const uint64_t deadline = now_ns() + 30000000000ull;
  for (;;) {
    const uint32_t v = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (v) return v;
    if (now_ns() > deadline) {
      Line l;
      l.s("uffdlazy: resume ").s(g_options.image).s(": ").s(what).s(" did not take over");
      die(kBroken, l);
    }
    timespec ts = {0, 100000000};
    sys::futex(word, FUTEX_WAIT_PRIVATE, 0, &ts);
  }
}

}  // namespace

long new_tid_of(uint32_t old_tid) {
  for (uint32_t i = 0; i < g_image.thread_count; i++) {
    if (g_image.thread(i).old_tid != old_tid) continue;
    return g_image.thread(i).role == uint32_t(snap::ThreadRole::kLeader) ? sys::getpid() : g_slots[i].tid;
  }
  return -1;
}

void start_threads(int image_fd, int uffd) {
  g_image_fd = image_fd;
  g_uffd = uffd;
  const uint32_t n = g_image.thread_count;
  if (n > kMaxThreads) {
    Line l;
    l.s("uffdlazy: resume ").s(g_options.image).s(": too many threads");
    die(kBroken, l);
  }
  long m = sys::mmap(reinterpret_cast<void*>(kScratch), uint64_t(n) * kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (m != long(kScratch)) {
    Line l;
    l.s("uffdlazy: resume ").s(g_options.image).s(": cannot map thread stacks: ").err(m);
    die(kBroken, l);
  }
  uint32_t spawned = 0;
  for (uint32_t i = 0; i < n; i++) {
    const snap::ThreadRecord& t = g_image.thread(i);
    g_slots[i].record = &t;
    if (t.role == uint32_t(snap::ThreadRole::kLeader)) continue;
    unsigned long flags = CLONE_VM | CLONE_FS | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    // The monitor keeps a descriptor table of its own (see core/monitor/monitor.h).
    if (t.role != uint32_t(snap::ThreadRole::kMonitor)) flags |= CLONE_FILES;
    void* top = reinterpret_cast<void*>(kScratch + uint64_t(i + 1) * kStackBytes);
    long r = restorer_spawn(flags, top, thread_main, &g_slots[i]);
    g_slots[i].tid = r;
    if (r < 0) {
      Line l;
      l.s("uffdlazy: resume ").s(g_options.image).s(": cannot create thread ").u(t.old_tid).s(": ").err(r);
      die(kBroken, l);
    }
    spawned++;
  }
  for (;;) {
    const uint32_t ready = __atomic_load_n(&g_ready, __ATOMIC_ACQUIRE);
    if (ready == spawned) break;
    futex_wait(&g_ready, ready);
  }
}

void release_and_become_leader() {
  const snap::ProcessRecord& p = *g_image.process;
  ckpt::ResumeBlock& b = *reinterpret_cast<ckpt::ResumeBlock*>(p.resume_block);
  uint32_t program_threads = 0;
  const snap::ThreadRecord* leader = nullptr;
  for (uint32_t i = 0; i < g_image.thread_count; i++) {
    const snap::ThreadRecord& t = g_image.thread(i);
    if (t.role == uint32_t(snap::ThreadRole::kLeader)) leader = &t;
    if (t.role == uint32_t(snap::ThreadRole::kLeader) || t.role == uint32_t(snap::ThreadRole::kApp)) program_threads++;
  }
  b.flags = (g_options.stats ? ckpt::kResumeStats : 0) | (g_options.verify ? ckpt::kResumeVerify : 0) |
            (g_options.lazy ? ckpt::kResumeLazy : 0) | (tracking_writes() ? ckpt::kResumeIncremental : 0) |
            ckpt::resume_paging_flags(g_options.prefetch, g_options.readahead);
  b.image_fd = g_image_fd;
  b.uffd_fd = g_uffd;
  // What the new descriptor has (the shim reads its messages, and tracks writes, by it).
  b.uffd_features = g_uffd >= 0 ? g_uffd_features : p.uffd_features;
  b.uffd_origin = p.uffd_origin;
  b.zone_start = kZone;
  b.zone_length = snap::kRestorerZoneLength;
  b.launch_ns = g_options.launch_ns;
  b.eager_pages = g_eager_pages;
  b.lazy_pages = g_lazy_pages;
  b.monitor_ready = 0;
  b.capture_done = 0;
  b.threads_in_zone = program_threads;
  b.resumes++;
  memcpy(b.report, g_options.report, sizeof b.report);
  memcpy(b.image, g_options.image, sizeof b.image);
  memcpy(b.checkpoint, g_options.checkpoint, sizeof b.checkpoint);
  if (p.flags & snap::kProcessChildMap) {
    memcpy(b.children, g_options.children, sizeof b.children);
    b.child_count = g_options.child_count;
  }
  b.magic = ckpt::kResumeMagic;
  restore_rlimits();
  restore_itimers();
  arm_timers();
  // Signals that were pending at the checkpoint: every thread still blocks them all, so they wait
  // until the program's own masks are back.
  const long pid = sys::getpid();
  for (int sig = 1; sig <= 64; sig++) {
    const uint64_t bit = uint64_t(1) << (sig - 1);
    if (sig == 9 || sig == 19) continue;
    if (p.shared_pending & bit) sys::kill(pid, sig);
    for (uint32_t i = 0; i < g_image.thread_count; i++) {
      if (!(g_image.thread(i).pending & bit)) continue;
      const long tid = g_image.thread(i).role == uint32_t(snap::ThreadRole::kLeader) ? pid : g_slots[i].tid;
      if (tid > 0) sys::call6(SYS_tgkill, pid, tid, sig);
    }
  }
  // Every write of the restorer and of the threads' set-up is done: the lazy ranges are registered
  // now, and from here on only the monitor puts pages there.
  register_lazy(g_uffd, g_options.lazy);
  trace("threads ready; the monitor takes over");
  let_go(snap::ThreadRole::kMonitor);
  if (has_role(snap::ThreadRole::kMonitor)) wait_for(&b.monitor_ready, "the shim's monitor");
  let_go(snap::ThreadRole::kCapture);
  if (has_role(snap::ThreadRole::kCapture)) wait_for(&b.capture_done, "the shim's checkpoint thread");
  b.running_ns = now_ns();
  trace("program threads go on");
  // The leader's own state first: its tid word is what pthread_kill(main thread) and
  // pthread_join read, and a thread let go may use it at once (before, a thread woken with data
  // already waiting signalled the main thread's old tid: ESRCH, and the main thread waited on).
  set_kernel_state(*leader);
  let_go(snap::ThreadRole::kApp);
  go_on(*leader);
}

}  // namespace restorer
