#include "core/monitor/copy_helper.h"

#include <cerrno>
#include <ctime>
#include <linux/futex.h>

#include "core/base/mono_clock.h"
#include "core/base/private_fd_table.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kStackSize = 256 * 1024;  // as the monitor's: sanitizer runtimes need >128 KiB
// The monitor waits this long, yielding, before it sleeps on the job: a half run takes tens to
// hundreds of microseconds.
constexpr uint64_t kWaitSpinNs = 2000000;

}  // namespace

void* CopyHelper::thread_main(void* self) {
  static_cast<CopyHelper*>(self)->run();
  return nullptr;
}

bool CopyHelper::start(Userfaultfd* uffd, uint64_t spin_ns) {
  uffd_ = uffd;
  spin_ns_ = spin_ns;
  stop_.store(false, std::memory_order_relaxed);
  posted_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  // available() turns true once the thread runs on its own table (run()).
  return thread_.start(thread_main, this, kStackSize, own_descriptor_table);
}

void CopyHelper::own_descriptor_table(void* self) {
  take_private_descriptor_table(static_cast<CopyHelper*>(self)->uffd_->fd(), -1);
}

void CopyHelper::stop() {
  if (!thread_.started()) return;
  running_.store(false, std::memory_order_release);
  stop_.store(true, std::memory_order_seq_cst);
  posted_.fetch_add(1, std::memory_order_seq_cst);
  sys::futex(&posted_, FUTEX_WAKE_PRIVATE, 1);
  thread_.join();
}

void CopyHelper::forget() {
  thread_.forget();
  running_.store(false, std::memory_order_release);
  stop_.store(false, std::memory_order_relaxed);
  sleeping_.store(false, std::memory_order_relaxed);
  posted_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
}

void CopyHelper::run() {
  name_this_thread("uffdlazy-copy");
  running_.store(true, std::memory_order_release);
  uint32_t seen = posted_.load(std::memory_order_acquire);
  for (;;) {
    // Look for the next job a while (the monitor posts them back to back during a fill), then sleep.
    const uint64_t deadline = mono_now_ns() + spin_ns_;
    uint32_t now = posted_.load(std::memory_order_acquire);
    while (now == seen) {
      if (mono_now_ns() >= deadline) {
        sleeping_.store(true, std::memory_order_seq_cst);
        now = posted_.load(std::memory_order_seq_cst);
        if (now == seen) sys::futex(&posted_, FUTEX_WAIT_PRIVATE, int(seen));
        sleeping_.store(false, std::memory_order_relaxed);
      } else {
        sys::call6(SYS_sched_yield);
      }
      now = posted_.load(std::memory_order_acquire);
    }
    seen = now;
    if (stop_.load(std::memory_order_acquire)) return;
    const Job& j = job_;
    const void* data = nullptr;
    Outcome o;
    o.read = j.source->read_pages(j.region, j.first, j.count, nullptr, j.page_size, &data);
    o.fill = o.read.pages ? uffd_->copy_from_source(j.dst, data, uint64_t(o.read.pages) * j.page_size)
                          : FillResult{FillStatus::kError, 0, 0};
    outcome_ = o;
    done_.store(seen, std::memory_order_release);
    sys::futex(&done_, FUTEX_WAKE_PRIVATE, 1);
  }
}

void CopyHelper::post(const Job& job) {
  job_ = job;
  posted_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst)) sys::futex(&posted_, FUTEX_WAKE_PRIVATE, 1);
}

CopyHelper::Outcome CopyHelper::wait() {
  const uint32_t want = posted_.load(std::memory_order_relaxed);
  const uint64_t spin_until = mono_now_ns() + kWaitSpinNs;
  for (;;) {
    const uint32_t d = done_.load(std::memory_order_acquire);
    if (d == want) return outcome_;
    if (!running_.load(std::memory_order_acquire)) {
      return Outcome{PagesRead{0, PagesRead::kIoError, ESRCH}, FillResult{FillStatus::kError, 0, ESRCH}};
    }
    if (mono_now_ns() < spin_until) {
      sys::call6(SYS_sched_yield);
    } else {
      // Long copies (a slow disk behind the page cache): sleep, looking again every millisecond.
      const timespec ms = {0, 1000000};
      sys::futex(&done_, FUTEX_WAIT_PRIVATE, int(d), &ms);
    }
  }
}

}  // namespace uffdlazy
