#include "core/monitor/monitor.h"

#include <cerrno>
#include <csignal>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/line_writer.h"
#include "core/base/mono_clock.h"
#include "core/base/private_fd_table.h"
#include "core/base/program_stderr.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kBatch = 64;  // messages per read(2)
#ifdef MADV_DONTNEED_LOCKED
constexpr int kMadvDontneedLocked = MADV_DONTNEED_LOCKED;
#else
constexpr int kMadvDontneedLocked = 24;
#endif
constexpr size_t kStackSize = 256 * 1024;

void* map_populated(size_t bytes) {
  long r = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return sys::failed(r) ? nullptr : reinterpret_cast<void*>(r);
}

void* thread_main(void* self) {
  static_cast<Monitor*>(self)->run();
  return nullptr;
}

// How long the copy helper keeps looking for the next job: the fill posts them back to back.
constexpr uint64_t kCopierSpinNs = 200 * 1000;

// The CPUs this thread may run on (at least 1).
int usable_cpus() {
  uint64_t mask[16] = {};
  long n = sys::call6(SYS_sched_getaffinity, 0, sizeof mask, reinterpret_cast<long>(mask));
  if (n <= 0) return 1;
  int count = 0;
  for (long i = 0; i < n / 8; i++) count += __builtin_popcountll(mask[i]);
  return count ? count : 1;
}

}  // namespace

bool Monitor::init(const Setup& setup) {
  s_ = setup;
  // Everything the loop touches is mapped (and populated) now, by raw mmap, aside: never
  // registered, never allocated later.
  if (s_.fault_around_pages < 1) s_.fault_around_pages = 1;
  if (s_.fault_around_pages > kMaxFaultAround) s_.fault_around_pages = kMaxFaultAround;
  static_assert(FaultPolicy::kMaxZeroCopy == kMaxFaultAround);
  if (!zero_pages_) {
    // Read-only and populated: every page maps the kernel's shared zero page, so the copies a
    // writer's fault-around takes from here never fault, and no memory is allocated for them.
    long z = mmap_aside(s_.page_size * kMaxFaultAround, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    zero_pages_ = sys::failed(z) ? nullptr : reinterpret_cast<void*>(z);
  }
  if (!msgs_) msgs_ = static_cast<uffd_msg*>(map_populated(kBatch * sizeof(uffd_msg)));
  if (!stage_) {
    // Not populated: only short runs are read into it, so most of it is never used. Mapped even
    // without a source: a resumed process gets one later (resumed()).
    long st = mmap_aside(s_.page_size * FaultPolicy::kStagePages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
    stage_ = sys::failed(st) ? nullptr : reinterpret_cast<void*>(st);
  }
  if (!queue_.capacity() && !queue_.init(kQueueCapacity, s_.page_size)) return false;
  if (!doorbell_) {
    long d = mmap_aside(s_.page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sys::failed(d)) return false;
    doorbell_ = uintptr_t(d);
  }
  if (!zero_pages_ || !msgs_ || !stage_ || s_.uffd->register_missing(doorbell_, s_.page_size) != 0)
    return false;
  FaultPolicy::Setup p;
  p.uffd = s_.uffd;
  p.table = s_.table;
  p.table_lock = s_.table_lock;
  p.source = s_.source;
  p.page_size = s_.page_size;
  p.fault_around_pages = s_.fault_around_pages;
  p.readahead_pages = s_.readahead_pages;
  p.zero_pages = zero_pages_;
  p.stage = stage_;
  p.touches = s_.touches;
  // A second copying thread pays only where there is much to copy: a snapshot still owing pages.
  want_copier_ = s_.copy_threads >= 2 && s_.source && s_.source->owed_pages() > 0 && usable_cpus() >= 2;
  p.copy_helper = want_copier_ ? &copier_ : nullptr;
  policy_.init(p);
  BackgroundFill::Setup f;
  f.policy = &policy_;
  f.table = s_.table;
  f.table_lock = s_.table_lock;
  f.source = s_.source;
  f.counters = s_.counters;
  f.observer = s_.observer;
  f.page_size = s_.page_size;
  f.mode = s_.prefetch;
  f.working_set = s_.working_set;
  f.working_set_runs = s_.working_set_runs;
  // Without the set (no memory for it) the replay still works, one record at a time.
  if (s_.working_set_runs &&
      (!working_set_pages_.empty() || working_set_pages_.init(s_.working_set, s_.working_set_runs))) {
    f.working_set_pages = &working_set_pages_;
  }
  fill_.init(f);
  return true;
}

bool Monitor::start() {
  // Also after a stop(): the new thread takes over the userfaultfd, its registrations and the
  // faults waiting on it.
  stop_.store(false, std::memory_order_relaxed);
  stopping_ = false;
  // Without it the monitor copies everything itself (available() stays false).
  if (want_copier_) copier_.start(s_.uffd, kCopierSpinNs);
  running_.store(true, std::memory_order_release);
  if (!thread_.start(thread_main, this, kStackSize, own_descriptor_table)) {
    running_.store(false, std::memory_order_release);
    copier_.stop();
    return false;
  }
  return true;
}

void Monitor::stop() {
  if (!thread_.started()) return;
  if (running()) {
    stop_.store(true, std::memory_order_release);
    ring();
  }
  thread_.join();
  copier_.stop();
}

void Monitor::forget_after_fork() {
  thread_.forget();
  copier_.forget();
  queue_.clear();
  stopping_ = false;
  overflowed_ = false;
  running_.store(false, std::memory_order_relaxed);
  stop_.store(false, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  fill_requested_.store(0, std::memory_order_relaxed);
  fill_done_.store(0, std::memory_order_relaxed);
  sync_requested_.store(0, std::memory_order_relaxed);
  sync_done_.store(0, std::memory_order_relaxed);
  restored_.store(0, std::memory_order_relaxed);
  restored_seen_ = 0;
  fills_stalled_.store(0, std::memory_order_relaxed);
  awake_.store(true, std::memory_order_relaxed);
  ws_requested_.store(0, std::memory_order_relaxed);
  ws_done_.store(0, std::memory_order_relaxed);
  claim_lock_.reset_after_fork();
  claim_requested_.store(0, std::memory_order_relaxed);
  claim_done_.store(0, std::memory_order_relaxed);
}

void Monitor::ring() {
  // The kernel queues a REMOVE for the doorbell and this thread waits until the monitor reads it.
  // MADV_DONTNEED_LOCKED (Linux 5.18), because the program may have locked the page along with its
  // own memory (mlockall(MCL_CURRENT)), and MADV_DONTNEED refuses a locked page with EINVAL without
  // sending anything. An older kernel refuses the advice itself with EINVAL: plain MADV_DONTNEED
  // then (there, a program that locks everything leaves the doorbell mute).
  void* bell = reinterpret_cast<void*>(doorbell_);
  if (sys::madvise(bell, s_.page_size, kMadvDontneedLocked) == -EINVAL) {
    sys::madvise(bell, s_.page_size, MADV_DONTNEED);
  }
}

void Monitor::request_and_wait(std::atomic<uint32_t>& requested, std::atomic<uint32_t>& done) {
  uint32_t ticket = requested.fetch_add(1, std::memory_order_acq_rel) + 1;
  ring();
  for (;;) {
    uint32_t d = done.load(std::memory_order_acquire);
    if (int32_t(d - ticket) >= 0 || !running()) return;
    sys::futex(&done, FUTEX_WAIT_PRIVATE, int(d));
  }
}

void Monitor::fill_all_owed() {
  if (!running() || !s_.source || s_.source->owed_pages() == 0) return;
  request_and_wait(fill_requested_, fill_done_);
}

void Monitor::wait_while_fills_stalled() {
  while (fills_stalled_.load(std::memory_order_acquire) && running()) {
    // Woken when the gate is lowered; the timeout only re-checks that the monitor still runs.
    const timespec ts = {0, 10 * 1000 * 1000};
    sys::futex(&fills_stalled_, FUTEX_WAIT_PRIVATE, 1, &ts);
  }
}

void Monitor::set_fills_stalled(bool stalled) {
  if (fills_stalled_.load(std::memory_order_relaxed) == uint32_t(stalled)) return;
  fills_stalled_.store(stalled, std::memory_order_release);
  if (!stalled) sys::futex(&fills_stalled_, FUTEX_WAKE_PRIVATE, 1 << 30);
}

void Monitor::sync() {
  if (!running()) return;
  request_and_wait(sync_requested_, sync_done_);
}

bool Monitor::working_set_names(int32_t source) const {
  for (size_t i = 0; i < s_.working_set_runs; i++) {
    if (int32_t(s_.working_set[i].source) == source) return true;
  }
  return false;
}

void Monitor::region_restored(int32_t source) {
  if (!running() || !s_.source || s_.prefetch == PrefetchMode::kNone) return;
  restored_.fetch_add(1, std::memory_order_seq_cst);
  if (working_set_names(source)) {
    request_and_wait(ws_requested_, ws_done_);
  } else if (!awake_.load(std::memory_order_seq_cst)) {
    // Asleep (or about to be, and it may not have seen the news): wake it. An awake monitor looks
    // at restored_ before it next sleeps, so a program that maps many regions pays no round trip
    // for each of them.
    ring();
  }
}

void Monitor::release_waiters() {
  set_fills_stalled(false);
  fill_done_.store(fill_requested_.load(std::memory_order_acquire), std::memory_order_release);
  sys::futex(&fill_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  sync_done_.store(sync_requested_.load(std::memory_order_acquire), std::memory_order_release);
  sys::futex(&sync_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  ws_done_.store(ws_requested_.load(std::memory_order_acquire), std::memory_order_release);
  sys::futex(&ws_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  claim_done_.store(claim_requested_.load(std::memory_order_acquire), std::memory_order_release);
  sys::futex(&claim_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
}

void Monitor::own_descriptor_table(void* self) {
  // The userfaultfd, and the file the page source reads and its doorbell, if any (see
  // private_fd_table.h).
  const Setup& s = static_cast<Monitor*>(self)->s_;
  const int source_fd = s.source ? s.source->descriptor() : -1;
  const int bell = s.source ? s.source->doorbell() : -1;
  take_private_descriptor_table(s.uffd->fd(), source_fd != s.uffd->fd() ? source_fd : -1, bell);
}

void Monitor::doorbell_rang() {
  // One non-blocking read of the eventfd; it stops the process if fetching failed with pages owed.
  if (!s_.source->on_doorbell()) return;
  // Parked faults are retried by the next serve_queue(); a fill that found blocks missing sweeps
  // again over what has landed since.
  if (!fill_.has_work()) fill_.restart();
}

void Monitor::run() {
  name_this_thread("uffdlazy-mon");
  if (s_.cpu >= 0) {
    uint64_t mask[16] = {};
    mask[s_.cpu / 64] |= uint64_t(1) << (s_.cpu % 64);
    sys::call6(SYS_sched_setaffinity, 0, sizeof mask, reinterpret_cast<long>(mask));
  }
  // A remote source's doorbell sits beside the userfaultfd: blocks landed (or fetching failed).
  const int bell = s_.source ? s_.source->doorbell() : -1;
  pollfd fds[2] = {{s_.uffd->fd(), POLLIN, 0}, {bell, POLLIN, 0}};
  pollfd& fd = fds[0];
  // A stop is a request like the others: the loop ends only once it has read the doorbell the
  // stopping thread rang (that thread waits in madvise until then).
  bool spun = false;  // a message arrived while spinning: look again without sleeping
  while (!stopping_) {
    // With nothing to fill the monitor sleeps until the kernel has something for it; otherwise it
    // looks (one non-blocking read) between chunks of the fill.
    if (!spun && !fill_.has_work()) {
      // Say so before sleeping, then look for a restored region announced without the doorbell
      // (see region_restored): one of the two sides always sees the other.
      awake_.store(false, std::memory_order_seq_cst);
      if (restored_.load(std::memory_order_seq_cst) == restored_seen_) {
        // Faults parked on a remote source look again now and then even without the doorbell: a
        // forked child's monitor shares the eventfd and may have read the ring meant for us.
        const timespec parked_wait = {0, 20 * 1000 * 1000};
        const bool parked = bell >= 0 && !queue_.empty();
        long r = sys::call6(SYS_ppoll, reinterpret_cast<long>(fds), bell >= 0 ? 2 : 1,
                            parked ? reinterpret_cast<long>(&parked_wait) : 0, 0, 8);
        if (r == -EINTR) continue;
        if (r < 0) fatal("poll on the userfaultfd failed", int(-r));
        if (fd.revents & (POLLERR | POLLNVAL)) fatal("the userfaultfd reported an error", EBADF);
      }
      awake_.store(true, std::memory_order_seq_cst);
    }
    spun = false;
    if (bell >= 0) doorbell_rang();
    if (!pump() || !answer_requests()) break;
    if (stopping_) break;
    if (fill_.has_work()) {
      if (!fill_.step(*this)) break;
      if (watch_resume_fill_ && fill_.sweep_done()) {
        watch_resume_fill_ = false;
        resume_filled_ns_.store(mono_now_ns(), std::memory_order_release);
      }
      continue;
    }
    const int more = spin_for_more();
    if (more < 0) break;
    spun = more > 0;
  }
  running_.store(false, std::memory_order_release);
  // Nobody may wait for a monitor that is gone.
  release_waiters();
}

bool Monitor::answer_requests() {
  const uint32_t restored = restored_.load(std::memory_order_acquire);
  if (restored != restored_seen_) {
    restored_seen_ = restored;
    fill_.restart();
  }
  const uint32_t ws = ws_requested_.load(std::memory_order_acquire);
  if (ws != ws_done_.load(std::memory_order_acquire)) {
    if (!fill_.fill_working_set(*this)) return false;
    ws_done_.store(ws, std::memory_order_release);
    sys::futex(&ws_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  }
  const uint32_t fill = fill_requested_.load(std::memory_order_acquire);
  if (fill != fill_done_.load(std::memory_order_acquire)) {
    if (!fill_.fill_all_data(*this, &Monitor::fatal_corrupt)) return false;
    fill_done_.store(fill, std::memory_order_release);
    sys::futex(&fill_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  }
  const uint32_t claim = claim_requested_.load(std::memory_order_acquire);
  if (claim != claim_done_.load(std::memory_order_acquire)) {
    // Every event read and applied, every fault read answered: nothing queued can land in the
    // range once it changes hands.
    if (!pump() || !carry_out_claim()) return false;
    claim_done_.store(claim, std::memory_order_release);
    sys::futex(&claim_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  }
  uint32_t want = sync_requested_.load(std::memory_order_acquire);
  if (want != sync_done_.load(std::memory_order_acquire)) {
    if (!pump()) return false;
    sync_done_.store(want, std::memory_order_release);
    sys::futex(&sync_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  }
  if (void (*fn)(void*) = on_monitor_fn_.exchange(nullptr, std::memory_order_acq_rel)) {
    // Taken before the caller's doorbell message may have been queued: read messages until the
    // caller is out of its madvise (the kernel holds it there until the message is read), since
    // fn may park this thread.
    while (!on_monitor_rung_.load(std::memory_order_acquire)) {
      if (!pump()) return false;
      if (on_monitor_rung_.load(std::memory_order_acquire)) break;
      const timespec ts = {0, 1000 * 1000};
      sys::futex(&on_monitor_rung_, FUTEX_WAIT_PRIVATE, 0, &ts);
    }
    if (!pump()) return false;
    fn(on_monitor_arg_);
  }
  return true;
}

bool Monitor::take_in() { return pump(); }

bool Monitor::take_in_events() {
  if (!read_batch()) wait_briefly();
  return serve_queue();
}

void Monitor::run_on_monitor(void (*fn)(void*), void* arg) {
  post_on_monitor(fn, arg);
  ring();
  doorbell_heard();
}

void Monitor::post_on_monitor(void (*fn)(void*), void* arg) {
  on_monitor_rung_.store(0, std::memory_order_release);
  on_monitor_arg_ = arg;
  on_monitor_fn_.store(fn, std::memory_order_release);
}

void Monitor::doorbell_heard() {
  on_monitor_rung_.store(1, std::memory_order_release);
  sys::futex(&on_monitor_rung_, FUTEX_WAKE_PRIVATE, 1);
}

void Monitor::resumed(PageSource* source, PrefetchMode prefetch, uint32_t readahead_pages) {
  queue_.clear();
  overflowed_ = false;
  stopping_ = false;
  s_.source = source;
  // The copy helper was not part of the image: a resumed process copies on the monitor alone.
  copier_.forget();
  if (readahead_pages) {
    s_.readahead_pages = readahead_pages;
    s_.prefetch = prefetch;
  }
  policy_.set_source(source, s_.readahead_pages);
  // Nothing read ahead or filled before the checkpoint is owed by the new source. Everything the
  // restorer registered is: the fill starts from the lowest region (the working set, which named
  // pages of the old source, is not replayed). It consults the owed bitmap page by page, and the
  // monitor applies every event (a madvise or munmap of the resumed program) before it installs
  // anything else, so a page dropped after the resume never comes back.
  fill_.set_source(source, s_.prefetch);
  fill_.restart();
  resume_filled_ns_.store(0, std::memory_order_release);
  watch_resume_fill_ = source && s_.prefetch == PrefetchMode::kAll;
}

void Monitor::retire() {
  failed_.store(true, std::memory_order_release);
  running_.store(false, std::memory_order_release);
  release_waiters();
  for (;;) sys::call6(SYS_exit, 0);
}

void Monitor::queue_fault(const uffd_msg& m, uint64_t read_ns) {
  PendingFault f = {m.arg.pagefault.address, m.arg.pagefault.flags, m.arg.pagefault.feat.ptid, 0, read_ns};
  fill_.fault_seen(f.address);
  if (queue_.add(f) != FaultQueue::Added::kFull) return;
  // More distinct pages waiting than the queue holds. Keep reading anyway (the event that
  // unblocks the queue may be behind this fault), and let this thread fault again once the queue
  // has drained: waking it now would only make it fault again ahead of that event.
  overflowed_ = true;
  MonitorCounters::bump(s_.counters->requeued);
}

void Monitor::wake_everyone() {
  // One wake over the whole user address space reaches every thread waiting on this userfaultfd;
  // those whose page is still missing fault again. The size of that space depends on the
  // architecture and the kernel's configuration: the first that the kernel accepts.
  for (uint64_t top : {uint64_t(1) << 56, uint64_t(1) << 52, uint64_t(1) << 48, uint64_t(1) << 47,
                       uint64_t(1) << 42, uint64_t(1) << 39}) {
    if (s_.uffd->wake(s_.page_size, top - 2 * s_.page_size) == 0) return;
  }
}

size_t Monitor::read_batch() {
  long n = s_.uffd->read_messages(msgs_, kBatch);
  if (n < 0) fatal("reading the userfaultfd failed", int(-n));
  if (n == 0) return 0;
  uint64_t t = mono_now_ns();
  // Events first, in the kernel's order: a fault read in the same batch may be on an address an
  // event has just moved, and the table must know before the fault is answered.
  for (long i = 0; i < n; i++) {
    if (msgs_[i].event != UFFD_EVENT_PAGEFAULT) handle_event(msgs_[i]);
  }
  // Before any fault of this batch is answered: a page of a lost piece must never get zeros.
  check_lost_pieces();
  for (long i = 0; i < n; i++) {
    if (msgs_[i].event == UFFD_EVENT_PAGEFAULT) queue_fault(msgs_[i], t);
  }
  return size_t(n);
}

bool Monitor::pump() {
  // One read per wake-up in the common case: only a full batch suggests more is waiting. Anything
  // that arrives later makes ppoll return at once, so nothing is missed by not reading until empty.
  for (;;) {
    size_t n = read_batch();
    if (!serve_queue()) return false;
    if (n < kBatch) return true;
  }
}

int Monitor::spin_for_more() {
  // Waking a sleeping monitor on an idle vCPU is the most expensive part of a round trip. Faults
  // come in bursts (a scan, a batch of lookups), so after answering one, stay awake a moment:
  // the next fault is then picked up without a wake-up. Bounded, so an idle program costs nothing,
  // and yielding between polls, so a thread woken on this CPU runs at once instead of waiting for
  // the spin to end. Whatever arrives is answered and the loop goes round again (requests and the
  // background fill are looked at between faults, never starved by a long burst).
  if (!s_.spin_ns) return 0;
  const uint64_t deadline = mono_now_ns() + s_.spin_ns;
  while (!stopping_) {
    if (read_batch()) return serve_queue() ? 1 : -1;
    if (mono_now_ns() >= deadline) break;
    sys::call6(SYS_sched_yield);
  }
  return 0;
}

void Monitor::wait_briefly() {
  // The thread that caused an event drops the kernel's "mappings changing" count only after it
  // runs again; give it a moment rather than spin.
  pollfd p = {s_.uffd->fd(), POLLIN, 0};
  timespec ts = {0, 50 * 1000};
  sys::call6(SYS_ppoll, reinterpret_cast<long>(&p), 1, reinterpret_cast<long>(&ts), 0, 8);
}

bool Monitor::serve_queue() {
  size_t parked = 0;  // faults parked in a row: once every queued fault is, stop until the doorbell
  while (!queue_.empty()) {
    Served s = serve(queue_.front());
    if (s == Served::kExiting) return false;
    if (s == Served::kParked) {
      // To the back of the queue: the faults behind it are served meanwhile.
      const PendingFault f = queue_.front();
      queue_.pop();
      queue_.add(f);
      if (++parked >= queue_.size()) break;
      continue;
    }
    parked = 0;
    if (s == Served::kRetry) {
      // An event is unread (or just read and not yet acknowledged): take events in, then retry.
      // Reading never stops for lack of room (see FaultQueue), so the event is always reached.
      // Nothing unread: the events read are still under way; hold new ones back meanwhile.
      if (!read_batch()) {
        set_fills_stalled(true);
        wait_briefly();
      }
      continue;
    }
    set_fills_stalled(false);
    queue_.pop();
  }
  set_fills_stalled(false);
  if (overflowed_ && queue_.empty()) {
    overflowed_ = false;
    wake_everyone();
  }
  return true;
}

Monitor::Served Monitor::serve(const PendingFault& f) {
  const uint64_t ps = s_.page_size;
  const uintptr_t page = f.address & ~(ps - 1);
  const bool write = f.flags & UFFD_PAGEFAULT_FLAG_WRITE;
  FaultAnswer a = policy_.answer(f.address, write, &Monitor::fatal_corrupt);
  if (a.parked) return Served::kParked;
  int resolution = a.resolution;
  switch (a.fill.status) {
    case FillStatus::kDone:
    case FillStatus::kPartial:
      MonitorCounters::bump(resolution == kResZero ? s_.counters->pages_zero : s_.counters->pages_data, a.pages);
      if (a.readahead) {
        MonitorCounters::bump(s_.counters->readahead, a.readahead);
        if (s_.observer) s_.observer->installed_ahead(AheadKind::kReadahead, a.readahead);
      }
      break;
    case FillStatus::kExists:
      // Another fault (or a racing thread) got there first; the page's waiters still need a wake.
      s_.uffd->wake(page, ps);
      MonitorCounters::bump(s_.counters->already_present);
      resolution = kResPresent;
      break;
    case FillStatus::kEventPending:
      return Served::kRetry;
    case FillStatus::kNoEntry:
      // Unmapped or moved since the fault: wake the thread so it faults again on whatever is
      // there now (or gets SIGSEGV, as it would without the shim).
      s_.uffd->wake(page, ps);
      MonitorCounters::bump(s_.counters->gone);
      resolution = kResGone;
      break;
    case FillStatus::kExiting:
      return Served::kExiting;
    case FillStatus::kError:
      fatal("installing a page failed", a.fill.err);
  }
  MonitorCounters::bump(s_.counters->faults);
  if (s_.observer) {
    s_.observer->fault_served(f.read_ns, mono_now_ns(), f.tid, f.address, write, a.region_id, resolution, a.pages);
  }
  return Served::kOk;
}

void Monitor::handle_event(const uffd_msg& m) {
  if (m.event == UFFD_EVENT_REMOVE && m.arg.remove.start == doorbell_) {
    // A request (see answer_requests); a stop ends the loop.
    if (stop_.load(std::memory_order_acquire)) stopping_ = true;
    return;
  }
  uint64_t t0 = s_.observer ? mono_now_ns() : 0;
  const uint64_t ps = s_.page_size;
  switch (m.event) {
    case UFFD_EVENT_REMOVE: {
      uintptr_t s = m.arg.remove.start, e = m.arg.remove.end;
      if (s_.source) {
        LockGuard g(*s_.table_lock);
        // Where limbo covers the range the event is about an older mapping there, not the new one.
        s_.table->for_each_piece_an_event_reaches(s, e, [&](const Region& r) {
          if (r.source != Region::kZeroSource) s_.source->drop(r.source, r.source_page, r.length() / ps);
        });
      }
      MonitorCounters::bump(s_.counters->remove);
      break;
    }
    case UFFD_EVENT_UNMAP: {
      uintptr_t s = m.arg.remove.start, e = m.arg.remove.end;
      {
        LockGuard g(*s_.table_lock);
        if (s_.source) {
          s_.table->for_each_piece_an_event_reaches(s, e, [&](const Region& r) {
            if (r.source != Region::kZeroSource) s_.source->drop(r.source, r.source_page, r.length() / ps);
          });
        }
        s_.table->unmapped(s, e);
      }
      // Threads blocked on the vanished range are not woken by the kernel.
      s_.uffd->wake(s, e - s);
      MonitorCounters::bump(s_.counters->unmap);
      break;
    }
    case UFFD_EVENT_REMAP: {
      uintptr_t from = m.arg.remap.from, to = m.arg.remap.to;
      uint64_t len = m.arg.remap.len;
      {
        LockGuard g(*s_.table_lock);
        s_.table->moved(from, to, len);
      }
      s_.uffd->wake(from, len);
      MonitorCounters::bump(s_.counters->remap);
      break;
    }
    case UFFD_EVENT_FORK:
      // Not requested; never keep a stray descriptor.
      sys::close(int(m.arg.fork.ufd));
      break;
    default:
      break;
  }
  if (s_.observer) s_.observer->event_handled(m.event, t0, mono_now_ns());
}

void Monitor::fatal(const char* what, int err) {
  give_up(what, err);
  // End this thread only. pthread_exit would unwind through libgcc, which may load a library and
  // take the loader's and malloc's locks; a bare exit leaves nothing for a faulting thread to wait on.
  for (;;) sys::call6(SYS_exit, 0);
}

void Monitor::give_up(const char* what, int err) {
  uint64_t owed = s_.source ? s_.source->owed_pages() : 0;
  LineWriter w;
  w.str("uffdlazy: monitor cannot continue: ").str(what).str(": ").errno_text(err);
  if (owed) {
    w.str("; ").u64(owed).str(" pages still owed from the snapshot would read as zeros, so the process is stopped");
    emit_to_program_stderr(w);
    for (;;) sys::kill(sys::getpid(), SIGKILL);
  }
  w.str("; lazy paging is off from here (memory reads as it would without the shim)");
  emit_to_program_stderr(w);
  {
    // With nothing owed, zeros are exactly what every waiter should see: unregistering a range
    // wakes its waiters and hands it back to the kernel's demand paging. A range registered after
    // this sees failed() and unregisters itself.
    LockGuard g(*s_.table_lock);
    failed_.store(true, std::memory_order_release);
    const RegionList& live = s_.table->live();
    for (size_t i = 0; i < live.size(); i++) s_.uffd->unregister(live.at(i).start, live.at(i).length());
    s_.uffd->unregister(doorbell_, s_.page_size);
  }
  running_.store(false, std::memory_order_release);
  release_waiters();
}

void Monitor::check_lost_pieces() {
  // The common case, after every batch the monitor reads: nothing lost, no lock taken.
  if (s_.table->lost_sourced() == lost_seen_) return;
  const uint64_t ps = s_.page_size;
  bool owes = false;
  {
    LockGuard g(*s_.table_lock);
    const uint64_t lost = s_.table->lost_sourced();
    if (lost == lost_seen_) return;
    const uint64_t unseen = lost - lost_seen_;
    lost_seen_ = lost;
    if (!s_.source) return;
    if (unseen > RegionTable::kLostKept) {
      // More pieces lost than the table remembers: any of them may owe pages.
      owes = s_.source->owed_all_pages() > 0;
    } else {
      for (uint64_t i = lost - unseen; i < lost && !owes; i++) {
        const Region& r = s_.table->lost_piece(i);
        const uint64_t end = r.source_page + r.length() / ps;
        owes = s_.source->next_owed(r.source, r.source_page, end) < end;
      }
    }
  }
  // Outside the lock: fatal() takes it when nothing is owed any more.
  if (owes) fatal("the region table is full and could not keep a piece of a restored region", ENOSPC);
}

void Monitor::fatal_corrupt(const Region& r, uint64_t page_index, uintptr_t address, int err) {
  LineWriter w;
  w.str("uffdlazy: snapshot region ").i64(r.source).str(" page ").u64(page_index).str(" (address ").hex(address);
  if (err) {
    w.str(") cannot be read from the snapshot: ").errno_text(err);
    w.str("; stopping the process rather than hand it a wrong page");
  } else {
    w.str(") failed its checksum; stopping the process rather than hand it a wrong page");
  }
  emit_to_program_stderr(w);
  for (;;) sys::kill(sys::getpid(), SIGKILL);
}

}  // namespace uffdlazy
