// Shared pieces of the fault and event benchmarks (bench/fault_bench*.cpp): an in-process core
// Monitor over regions this process registers itself, configured like the shim's (fault-around,
// spin, latency accounting through a LatencyObserver), CPU placement of the monitor and of the
// faulting thread, a tiny copy-from-memory page source, and per-access latency samples.
//
// Every benchmark here uses manual time: the work happens partly on the monitor thread, and setup
// (mmap, registration, munmap) must not count. Reported times are per page (faults) or per call
// (events); the latency counters are what the faulting thread itself measured around each access.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/base/spin_lock.h"
#include "core/latency/fault_stats.h"
#include "core/latency/latency_observer.h"
#include "core/base/mono_clock.h"
#include "core/monitor/monitor.h"
#include "core/monitor/monitor_counters.h"
#include "core/monitor/page_source.h"
#include "core/monitor/region_table.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy::bench {

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO (clocksource tsc here): ~20-30 ns
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline size_t page_size() {
  static const size_t ps = size_t(sysconf(_SC_PAGESIZE));
  return ps;
}

// Where the monitor thread and the faulting thread run.
enum class Placement {
  kUnpinned,  // the scheduler decides (what a real target gets)
  kCross,     // monitor on CPU 0, faulting thread on CPU 1
  kSame,      // monitor and faulting thread(s) both on CPU 0
  kSpread,    // two faulting threads, one pinned to each of CPU 0 and CPU 1; monitor unpinned
};

inline const char* placement_name(Placement p) {
  switch (p) {
    case Placement::kUnpinned: return "unpinned";
    case Placement::kCross: return "cross-cpu";
    case Placement::kSame: return "same-cpu";
    case Placement::kSpread: return "spread";
  }
  return "?";
}

// The CPU thread `tid` of this process last ran on (from /proc), or -1. Sampled after a touch loop,
// it says whether the round trips of that loop stayed on the faulting thread's CPU.
inline int thread_last_cpu(int tid) {
  if (tid <= 0) return -1;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  // Field 39 (processor); fields after the ")" that ends the command name start at 3.
  const char* p = strrchr(buf, ')');
  if (!p) return -1;
  int field = 2;
  for (p++; *p && field < 39; p++) {
    if (*p == ' ') field++;
  }
  return field == 39 ? atoi(p) : -1;
}

// Saves the calling thread's CPU mask and puts it back on destruction.
class AffinityGuard {
 public:
  AffinityGuard() { ok_ = sched_getaffinity(0, sizeof saved_, &saved_) == 0; }
  ~AffinityGuard() { restore(); }
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;

  // Pins the calling thread to one CPU. False if that CPU is not allowed.
  bool pin(int cpu) {
    if (!ok_ || !CPU_ISSET(cpu, &saved_)) return false;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0;
  }
  void restore() {
    if (ok_) sched_setaffinity(0, sizeof saved_, &saved_);
  }
  int allowed_cpus() const { return ok_ ? CPU_COUNT(&saved_) : 0; }
  // The n-th allowed CPU (placements use "CPU 0" and "CPU 1" of what we may run on).
  int nth_allowed(int n) const {
    for (int c = 0; c < CPU_SETSIZE; c++) {
      if (CPU_ISSET(c, &saved_) && n-- == 0) return c;
    }
    return -1;
  }

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

// Per-access latencies in nanoseconds, as the faulting thread measured them.
class LatencySamples {
 public:
  void reserve(size_t n) { ns_.reserve(n); }
  uint32_t* grab(size_t n) {
    size_t at = ns_.size();
    ns_.resize(at + n);
    return ns_.data() + at;
  }
  void add(uint64_t ns) { ns_.push_back(uint32_t(std::min<uint64_t>(ns, UINT32_MAX))); }
  size_t size() const { return ns_.size(); }
  uint32_t at(size_t i) const { return ns_[i]; }

  double quantile(double q) {
    if (ns_.empty()) return 0;
    size_t k = size_t(q * double(ns_.size() - 1) + 0.5);
    std::nth_element(ns_.begin(), ns_.begin() + long(k), ns_.end());
    return double(ns_[k]);
  }
  // Median and p99 (ns) as user counters; with --benchmark_report_aggregates_only the "median"
  // row then holds the median over repetitions of each repetition's p50 and p99.
  void report(benchmark::State& state) {
    state.counters["lat_p50_ns"] = quantile(0.50);
    state.counters["lat_p99_ns"] = quantile(0.99);
    state.counters["samples"] = double(ns_.size());
  }

 private:
  std::vector<uint32_t> ns_;
};

// "Copy from memory source": serves every page of source region 0 from a pre-filled buffer, so a
// fault takes the UFFDIO_COPY-from-data path the snapshot store will use. It never forgets a page
// (each benchmark iteration maps a fresh region over the same source pages), which keeps the cost
// per fault identical across iterations. Not the snapshot file source: no file, no checksum.
class MemorySource final : public PageSource {
 public:
  explicit MemorySource(size_t pages) : pages_(pages) {
    size_t bytes = pages * page_size();
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return;
    data_ = static_cast<unsigned char*>(p);
    for (size_t i = 0; i < pages; i++) std::memset(data_ + i * page_size(), pattern(i), page_size());
  }
  ~MemorySource() {
    if (data_) munmap(data_, pages_ * page_size());
  }
  bool ok() const { return data_ != nullptr; }
  static unsigned char pattern(size_t page) { return static_cast<unsigned char>(0x5a ^ (page * 131)); }

  PageContent peek(int32_t source, uint64_t page) override {
    if (source != 0 || page >= pages_) return {PageKind::kZero, nullptr};
    return {PageKind::kData, data_ + page * page_size()};
  }
  void consume(int32_t, uint64_t) override { consumed_++; }
  void drop(int32_t, uint64_t, uint64_t) override {}
  uint64_t owed_pages() const override { return 0; }

 private:
  size_t pages_;
  unsigned char* data_ = nullptr;
  uint64_t consumed_ = 0;
};

// How the monitor is set up, in the terms of the shim's environment variables.
struct MonitorConfig {
  uint32_t fault_around = 1;  // UFFDLAZY_FAULT_AROUND (the shim's default is 16)
  uint64_t spin_us = 0;       // UFFDLAZY_SPIN_US (the shim's default is 50)
};

// An in-process core Monitor over regions registered by this process, brought up once per
// benchmark run (one repetition) with the requested placement, and torn down at the end. Like the
// shim, it always keeps the latency account (FaultStats through a LatencyObserver, no trace), so
// reported_p50/p99 give what the shim's report would say for the same faults.
class MonitorHarness {
 public:
  // On failure, error() says why (the benchmark then skips with that message).
  MonitorHarness(Placement placement, PageSource* source, MonitorConfig config = {})
      : placement_(placement), stats_(std::make_unique<FaultStats>()), observer_(stats_.get(), nullptr, 0) {
    stats_->start(mono_now_ns());
    UffdOpenFailure why;
    if (!uffd_.open(false, &why)) {
      error_ = "userfaultfd unavailable (needs root or CAP_SYS_PTRACE)";
      return;
    }
    if (!table_.init(4096, 4096, page_size())) {
      error_ = "region table init failed";
      return;
    }
    Monitor::Setup s;
    s.uffd = &uffd_;
    s.table = &table_;
    s.table_lock = &lock_;
    s.source = source;
    s.counters = &counters_;
    s.observer = &observer_;
    s.page_size = page_size();
    s.fault_around_pages = config.fault_around;
    s.spin_ns = config.spin_us * 1000;
    if (!monitor_.init(s)) {
      error_ = "monitor init failed";
      return;
    }
    // The monitor thread inherits the creating thread's CPU mask: pin first, then start.
    if (placement_ == Placement::kCross || placement_ == Placement::kSame) {
      if (affinity_.allowed_cpus() < 2 && placement_ == Placement::kCross) {
        error_ = "cross-cpu placement needs two CPUs";
        return;
      }
      if (!affinity_.pin(affinity_.nth_allowed(0))) {
        error_ = "sched_setaffinity failed";
        return;
      }
    }
    if (!monitor_.start()) {
      error_ = "monitor thread could not start";
      return;
    }
    if (placement_ == Placement::kCross && !affinity_.pin(affinity_.nth_allowed(1))) {
      error_ = "sched_setaffinity failed";
      return;
    }
    started_ = true;
  }
  ~MonitorHarness() {
    monitor_.stop();
    affinity_.restore();
    uffd_.close();
    table_.release();
  }
  MonitorHarness(const MonitorHarness&) = delete;
  MonitorHarness& operator=(const MonitorHarness&) = delete;

  bool ok() const { return started_; }

  // The CPU the monitor thread last ran on (from /proc), or -1. Sampled after a touch loop, it says
  // whether the round trips of that loop stayed on the faulting thread's CPU.
  int monitor_cpu() {
    if (monitor_tid_ <= 0) monitor_tid_ = find_thread("uffdlazy-mon");
    return thread_last_cpu(monitor_tid_);
  }
  const std::string& error() const { return error_; }
  MonitorCounters& counters() { return counters_; }
  Monitor& monitor() { return monitor_; }
  Userfaultfd& uffd() { return uffd_; }
  // The monitor's own latency account (read to page in place and thread woken), as the shim's
  // JSON report has it. Call monitor().sync() first.
  const FaultStats& stats() const { return *stats_; }

  // Registers [p, p + pages) as the shim would after an mmap: table first, then the kernel.
  // source < 0: zero-filled; otherwise the region's page i comes from source page i.
  bool adopt(void* p, size_t pages, int32_t source) {
    uintptr_t s = uintptr_t(p), e = s + pages * page_size();
    Region r = {};
    r.start = s;
    r.end = e;
    r.source = source < 0 ? Region::kZeroSource : source;
    r.source_page = 0;
    r.prot = PROT_READ | PROT_WRITE;
    r.flags = MAP_PRIVATE | MAP_ANONYMOUS;
    {
      LockGuard g(lock_);
      table_.mapped(s, e);
      if (!table_.insert(r)) return false;
    }
    if (uffd_.register_missing(s, e - s) != 0) {
      LockGuard g(lock_);
      table_.forget(s, e);
      return false;
    }
    return true;
  }

  // A fresh anonymous region, registered. Null on failure.
  char* region(size_t pages, int32_t source = -1) {
    void* p = mmap(nullptr, pages * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    if (!adopt(p, pages, source)) {
      munmap(p, pages * page_size());
      return nullptr;
    }
    return static_cast<char*>(p);
  }

 private:
  Placement placement_;
  AffinityGuard affinity_;
  Userfaultfd uffd_;
  RegionTable table_;
  SpinLock lock_;
  MonitorCounters counters_;
  std::unique_ptr<FaultStats> stats_;
  LatencyObserver observer_;
  Monitor monitor_;
  bool started_ = false;
  int monitor_tid_ = 0;
  std::string error_;

  static int find_thread(const char* name) {
    DIR* d = opendir("/proc/self/task");
    if (!d) return -1;
    int found = -1;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char path[300], comm[32] = {};
      snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
      int fd = ::open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = ::read(fd, comm, sizeof comm - 1);
      ::close(fd);
      if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = 0;
      if (strcmp(comm, name) == 0) {
        found = atoi(e->d_name);
        break;
      }
    }
    closedir(d);
    return found;
  }
};

// The smallest userfaultfd handler there is, for comparison with the shim's monitor: one thread
// blocking in poll(2), reading one message, answering it with one ioctl (UFFDIO_ZEROPAGE for a
// read fault, UFFDIO_COPY of a zero page for a write), and nothing else: no region table, no
// accounting, no spinning, no events. Placed like MonitorHarness places the monitor.
class MinimalHandler {
 public:
  explicit MinimalHandler(Placement placement) : placement_(placement) {
    UffdOpenFailure why;
    if (!uffd_.open(false, &why)) {
      error_ = "userfaultfd unavailable";
      return;
    }
    zero_.assign(page_size(), 0);
    if (placement_ == Placement::kCross || placement_ == Placement::kSame) {
      if (affinity_.allowed_cpus() < 2 && placement_ == Placement::kCross) {
        error_ = "cross-cpu placement needs two CPUs";
        return;
      }
      if (!affinity_.pin(affinity_.nth_allowed(0))) {
        error_ = "sched_setaffinity failed";
        return;
      }
    }
    if (pipe2(stop_, O_CLOEXEC) != 0) {
      error_ = "pipe failed";
      return;
    }
    thread_ = std::thread([this] { loop(); });
    if (placement_ == Placement::kCross && !affinity_.pin(affinity_.nth_allowed(1))) {
      error_ = "sched_setaffinity failed";
      return;
    }
    started_ = true;
  }
  ~MinimalHandler() {
    if (thread_.joinable()) {
      char c = 0;
      if (write(stop_[1], &c, 1) != 1) {}
      thread_.join();
    }
    if (stop_[0] >= 0) close(stop_[0]);
    if (stop_[1] >= 0) close(stop_[1]);
    affinity_.restore();
    uffd_.close();
  }
  MinimalHandler(const MinimalHandler&) = delete;
  MinimalHandler& operator=(const MinimalHandler&) = delete;

  bool ok() const { return started_; }
  const std::string& error() const { return error_; }
  uint64_t served() const { return served_.load(); }
  int handler_cpu() const { return thread_last_cpu(tid_.load()); }

  char* region(size_t pages) {
    void* p = mmap(nullptr, pages * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    if (uffd_.register_missing(uintptr_t(p), pages * page_size()) != 0) {
      munmap(p, pages * page_size());
      return nullptr;
    }
    return static_cast<char*>(p);
  }

 private:
  void loop() {
    tid_.store(int(gettid()));
    pollfd fds[2] = {{uffd_.fd(), POLLIN, 0}, {stop_[0], POLLIN, 0}};
    for (;;) {
      if (poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents) return;
      uffd_msg m;
      if (read(uffd_.fd(), &m, sizeof m) != ssize_t(sizeof m)) continue;
      if (m.event != UFFD_EVENT_PAGEFAULT) continue;  // an munmap of a region: nothing to do
      const uintptr_t page = m.arg.pagefault.address & ~uintptr_t(page_size() - 1);
      if (m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) {
        uffd_.copy(page, zero_.data(), page_size());
      } else {
        uffd_.zeropage(page, page_size());
      }
      served_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  Placement placement_;
  AffinityGuard affinity_;
  Userfaultfd uffd_;
  std::vector<char> zero_;
  std::thread thread_;
  int stop_[2] = {-1, -1};
  std::atomic<uint64_t> served_{0};
  std::atomic<int> tid_{0};
  bool started_ = false;
  std::string error_;
};

// A fresh anonymous region for the kernel-only baselines: 4 KiB demand-zero faults (THP is
// "madvise" here; NOHUGEPAGE makes sure, since a registered range never gets a huge page either).
inline char* kernel_region(size_t pages) {
  void* p = mmap(nullptr, pages * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, pages * page_size(), MADV_NOHUGEPAGE);
  return static_cast<char*>(p);
}

}  // namespace uffdlazy::bench
