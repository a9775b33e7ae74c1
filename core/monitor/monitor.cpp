#include "core/monitor/monitor.h"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "core/base/line_writer.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kBatch = 64;         // messages per read(2)
constexpr size_t kQueue = 1024;       // faults waiting for an answer
constexpr size_t kStackSize = 256 * 1024;

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no lock, no syscall
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void* map_private(size_t bytes) {
  long r = sys::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return sys::failed(r) ? nullptr : reinterpret_cast<void*>(r);
}

void* thread_main(void* self) {
  static_cast<Monitor*>(self)->run();
  return nullptr;
}

// Resolution codes handed to the FaultObserver.
enum Resolution { kResSnapshot = 0, kResZero = 1, kResDuplicate = 2, kResPresent = 3, kResGone = 4 };

}  // namespace

bool Monitor::init(const Setup& setup) {
  s_ = setup;
  long efd = sys::call6(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return false;
  ctl_fd_ = int(efd);
  // Everything the loop touches is mapped (and populated) now, by raw mmap: never registered,
  // never allocated later.
  if (s_.fault_around_pages < 1) s_.fault_around_pages = 1;
  if (s_.fault_around_pages > kMaxFaultAround) s_.fault_around_pages = kMaxFaultAround;
  if (!zero_page_) zero_page_ = map_private(s_.page_size * s_.fault_around_pages);
  if (!msgs_) msgs_ = static_cast<uffd_msg*>(map_private(kBatch * sizeof(uffd_msg)));
  if (!queue_) queue_ = static_cast<Pending*>(map_private(kQueue * sizeof(Pending)));
  return zero_page_ && msgs_ && queue_;
}

bool Monitor::start() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackSize);
  sigset_t all, old;
  sigfillset(&all);
  // The thread inherits this mask: no signal handler of the target ever runs on the monitor.
  pthread_sigmask(SIG_SETMASK, &all, &old);
  running_.store(true, std::memory_order_release);
  pthread_t t;
  int rc = pthread_create(&t, &attr, thread_main, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    running_.store(false, std::memory_order_release);
    return false;
  }
  thread_ = t;
  return true;
}

void Monitor::stop() {
  if (!running()) return;
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  sys::write(ctl_fd_, &one, sizeof one);
  pthread_join(pthread_t(thread_), nullptr);
}

void Monitor::forget_after_fork() {
  if (ctl_fd_ >= 0) sys::close(ctl_fd_);
  ctl_fd_ = -1;
  thread_ = 0;
  queue_len_ = queue_head_ = 0;
  running_.store(false, std::memory_order_relaxed);
  stop_.store(false, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  fill_requested_.store(0, std::memory_order_relaxed);
  fill_done_.store(0, std::memory_order_relaxed);
  sync_requested_.store(0, std::memory_order_relaxed);
  sync_done_.store(0, std::memory_order_relaxed);
}

void Monitor::request_and_wait(std::atomic<uint32_t>& requested, std::atomic<uint32_t>& done) {
  uint32_t ticket = requested.fetch_add(1, std::memory_order_acq_rel) + 1;
  uint64_t one = 1;
  sys::write(ctl_fd_, &one, sizeof one);
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

void Monitor::sync() {
  if (!running()) return;
  request_and_wait(sync_requested_, sync_done_);
}

void Monitor::release_waiters() {
  fill_done_.store(fill_requested_.load(std::memory_order_acquire), std::memory_order_release);
  sys::futex(&fill_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
  sync_done_.store(sync_requested_.load(std::memory_order_acquire), std::memory_order_release);
  sys::futex(&sync_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
}

void Monitor::run() {
  prctl(PR_SET_NAME, "uffdlazy-mon", 0, 0, 0);
  if (s_.cpu >= 0) {
    uint64_t mask[16] = {};
    mask[s_.cpu / 64] |= uint64_t(1) << (s_.cpu % 64);
    sys::call6(SYS_sched_setaffinity, 0, sizeof mask, reinterpret_cast<long>(mask));
  }
  pollfd fds[2] = {{s_.uffd->fd(), POLLIN, 0}, {ctl_fd_, POLLIN, 0}};
  while (!stop_.load(std::memory_order_acquire)) {
    long r = sys::call6(SYS_ppoll, reinterpret_cast<long>(fds), 2, 0, 0, 8);
    if (r == -EINTR) continue;
    if (r < 0) fatal("poll on the userfaultfd failed", int(-r));
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      sys::read(ctl_fd_, &v, sizeof v);
      if (stop_.load(std::memory_order_acquire)) break;
    }
    if (fds[0].revents & (POLLERR | POLLNVAL)) fatal("the userfaultfd was closed under the monitor", EBADF);
    if (!pump()) break;
    if (!spin_for_more()) break;
    if (fill_requested_.load(std::memory_order_acquire) != fill_done_.load(std::memory_order_acquire)) {
      fill_owed_now();
    }
    uint32_t want = sync_requested_.load(std::memory_order_acquire);
    if (want != sync_done_.load(std::memory_order_acquire)) {
      pump();
      sync_done_.store(want, std::memory_order_release);
      sys::futex(&sync_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
    }
  }
  running_.store(false, std::memory_order_release);
  // Nobody may wait for a monitor that is gone.
  release_waiters();
}

size_t Monitor::read_batch() {
  size_t room = kQueue - queue_len_;
  size_t want = room < kBatch ? room : kBatch;
  if (want == 0) return 0;
  long n = s_.uffd->read_messages(msgs_, want);
  if (n < 0) fatal("reading the userfaultfd failed", int(-n));
  if (n == 0) return 0;
  uint64_t t = now_ns();
  // Events first, in the kernel's order: a fault read in the same batch may be on an address an
  // event has just moved, and the table must know before the fault is answered.
  for (long i = 0; i < n; i++) {
    if (msgs_[i].event != UFFD_EVENT_PAGEFAULT) handle_event(msgs_[i]);
  }
  for (long i = 0; i < n; i++) {
    const uffd_msg& m = msgs_[i];
    if (m.event != UFFD_EVENT_PAGEFAULT) continue;
    queue_[queue_len_++] = {m.arg.pagefault.address, m.arg.pagefault.flags, m.arg.pagefault.feat.ptid, t};
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

bool Monitor::spin_for_more() {
  // Waking a sleeping monitor on an idle vCPU is the most expensive part of a round trip. Faults
  // come in bursts (a scan, a batch of lookups), so after answering one, stay awake a moment:
  // the next fault is then picked up without a wake-up. Bounded, so an idle program costs nothing.
  if (!s_.spin_ns) return true;
  uint64_t deadline = now_ns() + s_.spin_ns;
  while (!stop_.load(std::memory_order_relaxed)) {
    size_t n = read_batch();
    if (n) {
      if (!serve_queue()) return false;
      deadline = now_ns() + s_.spin_ns;
      continue;
    }
    if (now_ns() >= deadline) break;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  return true;
}

void Monitor::wait_briefly() {
  // The thread that caused an event drops the kernel's "mappings changing" count only after it
  // runs again; give it a moment rather than spin.
  pollfd p = {s_.uffd->fd(), POLLIN, 0};
  timespec ts = {0, 50 * 1000};
  sys::call6(SYS_ppoll, reinterpret_cast<long>(&p), 1, reinterpret_cast<long>(&ts), 0, 8);
}

bool Monitor::serve_queue() {
  while (queue_head_ < queue_len_) {
    Served s = serve(queue_[queue_head_]);
    if (s == Served::kExiting) return false;
    if (s == Served::kRetry) {
      // An event is unread (or just read and not yet acknowledged): take events in, then retry.
      if (!read_batch()) wait_briefly();
      continue;
    }
    queue_head_++;
  }
  queue_head_ = queue_len_ = 0;
  return true;
}

Monitor::Served Monitor::serve(const Pending& f) {
  const uint64_t ps = s_.page_size;
  const uintptr_t page = f.address & ~(ps - 1);
  const bool write = f.flags & UFFD_PAGEFAULT_FLAG_WRITE;

  Region reg;
  bool found;
  {
    LockGuard g(*s_.table_lock);
    found = s_.table->lookup(page, &reg);
  }
  PageContent content = {PageKind::kZero, nullptr};
  uint64_t source_page = 0;
  const bool sourced = found && reg.source != Region::kZeroSource && s_.source;
  if (sourced) {
    source_page = reg.source_page + (page - reg.start) / ps;
    content = s_.source->peek(reg.source, source_page);
    if (content.kind == PageKind::kCorrupt) fatal_corrupt(reg, source_page, page);
  }

  FillResult res;
  int resolution;
  if (content.kind == PageKind::kData || content.kind == PageKind::kDuplicate) {
    res = s_.uffd->copy(page, content.data, ps);
    resolution = content.kind == PageKind::kData ? kResSnapshot : kResDuplicate;
  } else {
    resolution = kResZero;
    // Only inside a region the table knows, and never into a sourced one (its pages are owed).
    uint64_t window = ps;
    if (found && !sourced && s_.fault_around_pages > 1) {
      uint64_t room = reg.end - page;
      window = uint64_t(s_.fault_around_pages) * ps;
      if (window > room) window = room;
    }
    res = zero_fill(page, window, write);
    // The window may span two VMAs (an mprotect split the region): fall back to the one page.
    if (res.status == FillStatus::kNoEntry && window > ps) res = zero_fill(page, ps, write);
  }

  uint32_t pages = 0;
  switch (res.status) {
    case FillStatus::kDone:
    case FillStatus::kPartial:
      // Partial: pages up to an already present one were installed (the faulting page first).
      pages = uint32_t(res.bytes / ps ? res.bytes / ps : 1);
      MonitorCounters::bump(content.kind == PageKind::kZero ? s_.counters->pages_zero : s_.counters->pages_data, pages);
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
      fatal("installing a page failed", res.err);
  }
  if (sourced && res.status != FillStatus::kNoEntry) s_.source->consume(reg.source, source_page);
  MonitorCounters::bump(s_.counters->faults);
  if (s_.observer) {
    s_.observer->fault_served(f.read_ns, now_ns(), f.tid, f.address, write, found ? reg.id : 0, resolution, pages);
  }
  return Served::kOk;
}

FillResult Monitor::zero_fill(uintptr_t start, uint64_t len, bool write) {
  // A write would land on the shared zero page and fault again in the kernel; give a writer
  // private zeroed pages straight away. Readers share the zero page and cost no memory.
  if (write) return s_.uffd->copy(start, zero_page_, len);
  return s_.uffd->zeropage(start, len);
}

void Monitor::handle_event(const uffd_msg& m) {
  uint64_t t0 = s_.observer ? now_ns() : 0;
  const uint64_t ps = s_.page_size;
  switch (m.event) {
    case UFFD_EVENT_REMOVE: {
      uintptr_t s = m.arg.remove.start, e = m.arg.remove.end;
      if (s_.source) {
        LockGuard g(*s_.table_lock);
        s_.table->for_each_overlap(s, e, [&](const Region& r) {
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
          s_.table->for_each_overlap(s, e, [&](const Region& r) {
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
      // Not requested (the shim fills owed pages before fork instead); never keep a stray fd.
      sys::close(int(m.arg.fork.ufd));
      break;
    default:
      break;
  }
  if (s_.observer) s_.observer->event_handled(m.event, t0, now_ns());
}

void Monitor::fill_owed_now() {
  uint32_t target = fill_requested_.load(std::memory_order_acquire);
  const uint64_t ps = s_.page_size;
  uintptr_t cursor = 0;
  for (;;) {
    Region reg;
    bool found = false;
    {
      LockGuard g(*s_.table_lock);
      const RegionList& live = s_.table->live();
      for (size_t i = live.lower_bound(cursor); i < live.size(); i++) {
        if (live.at(i).source != Region::kZeroSource && live.at(i).end > cursor) {
          reg = live.at(i);
          found = true;
          break;
        }
      }
    }
    if (!found) break;
    uintptr_t start = reg.start > cursor ? reg.start : cursor;
    for (uintptr_t page = start; page < reg.end; page += ps) {
      uint64_t sp = reg.source_page + (page - reg.start) / ps;
      PageContent c = s_.source->peek(reg.source, sp);
      if (c.kind == PageKind::kZero) continue;
      if (c.kind == PageKind::kCorrupt) fatal_corrupt(reg, sp, page);
      FillResult res = s_.uffd->copy(page, c.data, ps);
      if (res.status == FillStatus::kEventPending) {
        // Events change the table: take them in and restart from this page.
        if (!read_batch()) wait_briefly();
        serve_queue();
        reg.end = page;  // leave the inner loop; the outer loop looks the page up again
        cursor = page;
        break;
      }
      if (res.status == FillStatus::kExiting) return;
      if (res.status == FillStatus::kError) fatal("filling owed pages before fork failed", res.err);
      if (res.status == FillStatus::kDone) MonitorCounters::bump(s_.counters->pages_data);
      s_.source->consume(reg.source, sp);
      cursor = page + ps;
    }
    if (cursor < reg.end) cursor = reg.end;
  }
  fill_done_.store(target, std::memory_order_release);
  sys::futex(&fill_done_, FUTEX_WAKE_PRIVATE, 1 << 30);
}

void Monitor::fatal(const char* what, int err) {
  uint64_t owed = s_.source ? s_.source->owed_pages() : 0;
  LineWriter w;
  w.str("uffdlazy: monitor cannot continue: ").str(what).str(": ").errno_text(err);
  if (owed) {
    w.str("; ").u64(owed).str(" pages still owed from the snapshot would read as zeros, so the process is stopped");
    w.emit();
    for (;;) sys::kill(sys::getpid(), SIGKILL);
  }
  w.str("; lazy paging is off from here (memory reads as it would without the shim)");
  w.emit();
  failed_.store(true, std::memory_order_release);
  // Closing the last reference unregisters every range and wakes every waiter: with nothing owed,
  // zeros are exactly what they should see. If the program closed it for us (EBADF), the number
  // may already be reused for one of its own files: leave it alone.
  if (err != EBADF) s_.uffd->close();
  running_.store(false, std::memory_order_release);
  release_waiters();
  // End this thread only. pthread_exit would unwind through libgcc, which may load a library and
  // take the loader's and malloc's locks; a bare exit leaves nothing for a faulting thread to wait on.
  for (;;) sys::call6(SYS_exit, 0);
}

void Monitor::fatal_corrupt(const Region& r, uint64_t page_index, uintptr_t address) {
  LineWriter w;
  w.str("uffdlazy: snapshot region ").i64(r.source).str(" page ").u64(page_index).str(" (address ")
      .hex(address).str(") failed its checksum; stopping the process rather than hand it a wrong page");
  w.emit();
  for (;;) sys::kill(sys::getpid(), SIGKILL);
}

}  // namespace uffdlazy
