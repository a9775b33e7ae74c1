// First-touch fault costs: the kernel's own demand-zero fault against the same touch served by the
// core Monitor set up as the shim sets it up, for read and write faults, sequential and random page
// order, one and two faulting threads, and three placements of the monitor thread relative to the
// faulting thread. Run through scripts/bench.sh, which writes bench/RESULTS.md.
//
// Monitor configurations (names end in /spin<N>, and zero-fa<N> for fault-around):
//   zero            no source, fault_around 1 (one page per fault), spin 0 or 50 us (the shim's
//                   default UFFDLAZY_SPIN_US); the single-page fault the target is about
//   zero-fa16       no source, fault_around 16 (the shim's default): one fault installs 16 pages
//   copy-mem        a PageSource serving pre-filled memory: UFFDIO_COPY of real data, no file
//   snapshot[-verify]  the real SnapshotPageSource over a snapshot file written at the start of
//                   the run (region 0 of the snapshot), checksum verification off / on
// Every monitor keeps the shim's latency account (FaultStats via LatencyObserver, no trace).
//
// Time reported per iteration is per page: each iteration touches kPages fresh pages and reports
// (time of the touch loop) / kPages through manual timing, so mmap, registration, munmap and
// reopening the snapshot are not counted. lat_p50_ns / lat_p99_ns are per-access latencies the
// faulting thread measured itself (one clock read between consecutive accesses), i.e. what the
// program felt; rep_p50_ns / rep_p99_ns are what the monitor's own account says (read of the
// fault message to page in place and thread woken), as the shim's JSON report would.
#include <pthread.h>

#include <atomic>
#include <random>
#include <thread>

#include "bench/bench_harness.h"
#include "core/snapshot/executable_identity.h"
#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

namespace uffdlazy::bench {
namespace {

constexpr size_t kPages = 1024;        // pages touched per iteration (4 MiB)
constexpr int kKernelIterations = 32;  // cheap: more samples
constexpr int kMonitorIterations = 8;  // up to ~60 us per page across vCPUs

enum class Mode {
  kPresent,         // pages already mapped: the floor (loop + clock read), no fault at all
  kKernel,          // unregistered: the kernel's demand-zero fault
  kZero,            // registered, Monitor with no source: UFFDIO_ZEROPAGE (read) / COPY of zeros (write)
  kCopyMem,         // registered, Monitor with MemorySource: UFFDIO_COPY from a pre-filled buffer
  kSnapshot,        // registered, Monitor with SnapshotPageSource over a snapshot file, no verify
  kSnapshotVerify,  // the same with checksum verification of each page on first use
  kMinimal,         // registered, a bare poll/read/ioctl handler thread (MinimalHandler), no Monitor
};

struct FaultCase {
  Mode mode;
  bool write;
  bool random;
  int threads;
  Placement placement;
  MonitorConfig config;
};

bool monitored(Mode m) { return m != Mode::kPresent && m != Mode::kKernel && m != Mode::kMinimal; }
bool snapshot_mode(Mode m) { return m == Mode::kSnapshot || m == Mode::kSnapshotVerify; }

// Touches n pages in the given order and records the latency of each access. Returns the total.
template <bool kWrite>
__attribute__((noinline)) uint64_t touch(char* base, const uint32_t* order, size_t n, uint32_t* lat) {
  const size_t ps = page_size();
  const uint64_t start = now_ns();
  uint64_t prev = start;
  for (size_t i = 0; i < n; i++) {
    volatile char* p = base + size_t(order[i]) * ps;
    if constexpr (kWrite) {
      *p = 1;
    } else {
      (void)*p;
    }
    uint64_t t = now_ns();
    lat[i] = uint32_t(std::min<uint64_t>(t - prev, UINT32_MAX));
    prev = t;
  }
  return prev - start;
}

uint64_t touch_pages(bool write, char* base, const uint32_t* order, size_t n, uint32_t* lat) {
  return write ? touch<true>(base, order, n, lat) : touch<false>(base, order, n, lat);
}

std::vector<uint32_t> page_order(size_t n, bool random) {
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; i++) order[i] = uint32_t(i);
  if (random) {
    std::mt19937 rng(12345);
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

// Two threads touch disjoint halves at once. Returns the wall time from the start signal until the
// later thread finished.
// With `cpus` set, thread k pins itself to cpus[k] first.
uint64_t touch_two_threads(bool write, char* base, const std::vector<uint32_t>& half_order, uint32_t* lat,
                           const int* cpus) {
  const size_t half = half_order.size();
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  uint64_t end[2] = {0, 0};
  auto body = [&](int k) {
    if (cpus) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[k], &one);
      sched_setaffinity(0, sizeof one, &one);
    }
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) sched_yield();  // may share a CPU with main
    touch_pages(write, base + size_t(k) * half * page_size(), half_order.data(), half, lat + size_t(k) * half);
    end[k] = now_ns();
  };
  std::thread t0(body, 0), t1(body, 1);
  while (ready.load() != 2) sched_yield();
  uint64_t start = now_ns();
  go.store(true, std::memory_order_release);
  t0.join();
  t1.join();
  return std::max(end[0], end[1]) - start;
}

bool verify_copy(const char* base, size_t pages) {
  for (size_t i = 0; i < pages; i += 97) {
    unsigned char want = MemorySource::pattern(i);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(base + i * page_size());
    // A write case stored 1 at offset 0; the rest of the page must be the source's.
    if (p[1] != want || p[page_size() - 1] != want) return false;
  }
  return true;
}

// Word w of page i of the snapshot region: distinct for every page, so nothing deduplicates and
// every fault is a kData page (verification then hashes each one).
uint64_t snap_word(uint64_t page, uint64_t w) {
  uint64_t x = (page << 20) ^ w ^ 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A real snapshot file with one region of `pages` data pages, and the SnapshotPageSource over it
// that the monitor serves from. reset() reopens the file (a fresh private mapping, so the
// monitor's reads fault the file's pages in again from the page cache, as in a fresh restore) and
// starts the source over (every page owed and unverified again).
class SnapshotFixture {
 public:
  SnapshotFixture(size_t pages, bool verify) : pages_(pages), verify_(verify) {
    snprintf(path_, sizeof path_, "/tmp/uffdlazy-bench-%d.snap", int(getpid()));
    auto id = std::make_unique<snap::ModuleIdentity>();
    id->set_path("/uffdlazy/bench", 15);
    auto w = std::make_unique<snap::SnapshotWriter>();
    snap::WriterOptions o;
    o.sync = false;
    std::vector<uint64_t> buf(page_size() / 8);
    snap::RegionInfo info{0x10000000, pages * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, {}};
    ok_ = w->open(path_, o).ok() && w->begin(*id, 0).ok() &&
          w->add_region_with(info, [&](uint64_t i) -> const void* {
            for (size_t k = 0; k < buf.size(); k++) buf[k] = snap_word(i, k);
            return buf.data();
          }).ok() &&
          w->commit().ok() && w->stats().data_pages == pages;
    written_ = ok_;
  }
  ~SnapshotFixture() {
    source_.release();
    reader_.close();
    if (written_) unlink(path_);
  }
  bool ok() const { return ok_; }
  PageSource* source() { return &source_; }
  const snap::SnapshotPageSource& snapshot_source() const { return source_; }
  uint64_t file_size() const { return reader_.file_size(); }

  // Only while the monitor is idle (after Monitor::sync()).
  bool reset() {
    source_.release();
    reader_.close();
    return reader_.open(path_).ok() && reader_.region_count() == 1 && source_.init(&reader_, verify_) == 0;
  }
  bool check(const char* base, bool wrote) const {
    for (size_t i = 0; i < pages_; i += 97) {
      const uint64_t* p = reinterpret_cast<const uint64_t*>(base + i * page_size());
      if ((!wrote && p[0] != snap_word(i, 0)) || p[1] != snap_word(i, 1) ||
          p[page_size() / 8 - 1] != snap_word(i, page_size() / 8 - 1))
        return false;
    }
    return true;
  }

 private:
  size_t pages_;
  bool verify_;
  bool ok_ = false;
  bool written_ = false;
  char path_[128];
  snap::SnapshotReader reader_;
  snap::SnapshotPageSource source_;
};

void run_faults(benchmark::State& state, FaultCase c) {
  const size_t ps = page_size();
  std::unique_ptr<MemorySource> mem;
  std::unique_ptr<SnapshotFixture> snapshot;
  std::unique_ptr<MonitorHarness> harness;
  PageSource* source = nullptr;
  if (c.mode == Mode::kCopyMem) {
    mem = std::make_unique<MemorySource>(kPages);
    if (!mem->ok()) {
      state.SkipWithError("source buffer allocation failed");
      return;
    }
    source = mem.get();
  }
  if (snapshot_mode(c.mode)) {
    snapshot = std::make_unique<SnapshotFixture>(kPages, c.mode == Mode::kSnapshotVerify);
    if (!snapshot->ok() || !snapshot->reset()) {
      state.SkipWithError("writing or opening the snapshot file failed");
      return;
    }
    source = snapshot->source();
  }
  if (monitored(c.mode)) {
    harness = std::make_unique<MonitorHarness>(c.placement, source, c.config);
    if (!harness->ok()) {
      state.SkipWithError(harness->error().c_str());
      return;
    }
  }
  std::unique_ptr<MinimalHandler> minimal;
  if (c.mode == Mode::kMinimal) {
    minimal = std::make_unique<MinimalHandler>(c.placement);
    if (!minimal->ok()) {
      state.SkipWithError(minimal->error().c_str());
      return;
    }
  }
  // The harness pins the monitor and the calling thread for cross-cpu and same-cpu; for spread,
  // each of the two faulting threads pins itself to one CPU.
  AffinityGuard affinity;
  int spread_cpus[2] = {affinity.nth_allowed(0), affinity.nth_allowed(1)};
  const int* cpus = nullptr;
  if (c.placement == Placement::kSpread) {
    if (spread_cpus[1] < 0) {
      state.SkipWithError("spread placement needs two CPUs");
      return;
    }
    cpus = spread_cpus;
  }
  int same_cpu_samples = 0, cpu_samples = 0;
  const std::vector<uint32_t> order = page_order(c.threads == 2 ? kPages / 2 : kPages, c.random);
  LatencySamples lat, fault_lat;
  lat.reserve(size_t(state.max_iterations) * kPages);
  const uint32_t around = harness ? std::max<uint32_t>(c.config.fault_around, 1) : 1;

  bool first = true;
  for (auto _ : state) {
    if (snapshot && !first) {
      harness->monitor().sync();  // the previous iteration's munmap has been handled
      if (!snapshot->reset()) {
        state.SkipWithError("reopening the snapshot file failed");
        break;
      }
    }
    first = false;
    int32_t src = source ? 0 : -1;
    char* base = harness ? harness->region(kPages, src) : minimal ? minimal->region(kPages) : kernel_region(kPages);
    if (!base) {
      state.SkipWithError("mmap or registration failed");
      break;
    }
    if (c.mode == Mode::kPresent) std::memset(base, 0, kPages * ps);
    uint32_t* out = lat.grab(kPages);
    uint64_t ns = c.threads == 2 ? touch_two_threads(c.write, base, order, out, cpus)
                                 : touch_pages(c.write, base, order.data(), kPages, out);
    state.SetIterationTime(double(ns) * 1e-9 / double(kPages));
    // With fault-around, a sequential first touch faults only on every around-th page: keep those
    // touches apart, so the cost of the faults themselves shows next to the per-touch figures.
    if (around > 1 && !c.random && c.threads == 1) {
      for (size_t i = 0; i < kPages; i += around) fault_lat.add(out[i]);
    }
    if ((harness || minimal) && c.threads == 1) {
      int mon = harness ? harness->monitor_cpu() : minimal->handler_cpu();
      if (mon >= 0) {
        cpu_samples++;
        same_cpu_samples += mon == sched_getcpu();
      }
    }
    if (c.mode == Mode::kCopyMem && !verify_copy(base, kPages)) {
      state.SkipWithError("copy-from-memory pages do not hold the source's bytes");
      munmap(base, kPages * ps);
      break;
    }
    if (snapshot) {
      harness->monitor().sync();
      const auto& s = snapshot->snapshot_source();
      bool served = s.served_pages() == kPages && (c.mode != Mode::kSnapshotVerify || s.verified_pages() == kPages);
      if (!served || !snapshot->check(base, c.write)) {
        state.SkipWithError("snapshot pages were not all served from the file, or hold the wrong bytes");
        munmap(base, kPages * ps);
        break;
      }
    }
    munmap(base, kPages * ps);
  }
  lat.report(state);
  if (fault_lat.size()) {
    state.counters["fault_p50_ns"] = fault_lat.quantile(0.50);
    state.counters["fault_p99_ns"] = fault_lat.quantile(0.99);
  }
  if (harness) {
    harness->monitor().sync();
    double pages = double(state.iterations()) * double(kPages);
    // Sanity: monitor-served faults per page touched (1.0 expected; 1/N with fault-around N).
    state.counters["mon_faults_per_page"] = pages > 0 ? double(harness->counters().faults.load()) / pages : 0;
    // Fraction of iterations after which the monitor had last run on the faulting thread's CPU.
    if (cpu_samples) state.counters["mon_same_cpu"] = double(same_cpu_samples) / double(cpu_samples);
    // What the monitor's latency account (the shim's report) says about the same faults.
    const LatencyHistogram& h = harness->stats().overall();
    if (h.count()) {
      state.counters["rep_p50_ns"] = double(h.value_at_percentile(50));
      state.counters["rep_p99_ns"] = double(h.value_at_percentile(99));
    }
  }
  if (snapshot) state.counters["snapshot_file_bytes"] = double(snapshot->file_size());
  if (minimal) {
    double pages = double(state.iterations()) * double(kPages);
    state.counters["mon_faults_per_page"] = pages > 0 ? double(minimal->served()) / pages : 0;
    if (cpu_samples) state.counters["mon_same_cpu"] = double(same_cpu_samples) / double(cpu_samples);
  }
}

// The ioctl the monitor answers a single-page fault with, issued directly on a registered range
// that nobody touched (no fault, no waiter, no thread switch): UFFDIO_ZEROPAGE (what a read fault
// gets) or UFFDIO_COPY of a zero page (what a write fault gets), one page per call. The part of a
// round trip that is the kernel installing the page; the rest is delivery, wake-ups and scheduling.
void run_install(benchmark::State& state, bool copy) {
  const size_t ps = page_size();
  MonitorHarness harness(Placement::kUnpinned, nullptr);
  if (!harness.ok()) {
    state.SkipWithError(harness.error().c_str());
    return;
  }
  std::vector<char> zeros(ps, 0);
  LatencySamples lat;
  lat.reserve(size_t(state.max_iterations) * kPages);
  for (auto _ : state) {
    char* base = harness.region(kPages);
    if (!base) {
      state.SkipWithError("mmap or registration failed");
      break;
    }
    uint32_t* out = lat.grab(kPages);
    bool ok = true;
    const uint64_t start = now_ns();
    uint64_t prev = start;
    for (size_t i = 0; i < kPages; i++) {
      uintptr_t dst = uintptr_t(base) + i * ps;
      FillResult r = copy ? harness.uffd().copy(dst, zeros.data(), ps) : harness.uffd().zeropage(dst, ps);
      ok &= r.status == FillStatus::kDone;
      uint64_t t = now_ns();
      out[i] = uint32_t(std::min<uint64_t>(t - prev, UINT32_MAX));
      prev = t;
    }
    state.SetIterationTime(double(prev - start) * 1e-9 / double(kPages));
    munmap(base, kPages * ps);
    if (!ok) {
      state.SkipWithError("UFFDIO_ZEROPAGE / UFFDIO_COPY failed");
      break;
    }
  }
  lat.report(state);
  harness.monitor().sync();
  // Sanity: the monitor saw no fault (0 expected).
  state.counters["mon_faults_per_page"] = double(harness.counters().faults.load());
}

std::string case_name(const FaultCase& c) {
  std::string n = "fault/";
  switch (c.mode) {
    case Mode::kPresent: n += "present"; break;
    case Mode::kKernel: n += "kernel"; break;
    case Mode::kZero: n += c.config.fault_around > 1 ? "zero-fa" + std::to_string(c.config.fault_around) : "zero"; break;
    case Mode::kCopyMem: n += "copy-mem"; break;
    case Mode::kSnapshot: n += "snapshot"; break;
    case Mode::kSnapshotVerify: n += "snapshot-verify"; break;
    case Mode::kMinimal: n += "minimal"; break;
  }
  n += c.write ? "/write" : "/read";
  n += c.random ? "/random" : "/seq";
  n += c.threads == 2 ? "/2threads" : "/1thread";
  if (monitored(c.mode) || c.mode == Mode::kMinimal || c.threads == 2) n += std::string("/") + placement_name(c.placement);
  if (monitored(c.mode)) n += "/spin" + std::to_string(c.config.spin_us);
  return n;
}

void add(const FaultCase& c) {
  int iters = monitored(c.mode) || c.mode == Mode::kMinimal ? kMonitorIterations : kKernelIterations;
  benchmark::RegisterBenchmark(case_name(c).c_str(), run_faults, c)
      ->Iterations(iters)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

const bool registered = [] {
  const Placement all[] = {Placement::kUnpinned, Placement::kCross, Placement::kSame};
  const Placement any = Placement::kUnpinned;
  const MonitorConfig spin0 = {1, 0};    // one page per fault, monitor sleeps at once
  const MonitorConfig shim1 = {1, 50};   // the shim's spin; UFFDLAZY_FAULT_AROUND=1
  const MonitorConfig shim16 = {16, 50};  // the shim's defaults
  add({Mode::kPresent, false, false, 1, any, {}});
  add({Mode::kPresent, true, false, 1, any, {}});
  for (bool copy : {false, true}) {
    benchmark::RegisterBenchmark(copy ? "install/copy-zero" : "install/zeropage", run_install, copy)
        ->Iterations(kKernelIterations)
        ->UseManualTime()
        ->Unit(benchmark::kNanosecond);
  }
  for (bool random : {false, true}) {
    for (bool write : {false, true}) add({Mode::kKernel, write, random, 1, any, {}});
  }
  add({Mode::kKernel, true, false, 2, Placement::kSpread, {}});
  add({Mode::kKernel, true, false, 2, Placement::kUnpinned, {}});
  // Single-page faults: spin 0 and the shim's spin 50 us, every kind, order and placement.
  for (const MonitorConfig& cfg : {spin0, shim1}) {
    for (bool random : {false, true}) {
      for (bool write : {false, true}) {
        for (Placement p : all) add({Mode::kZero, write, random, 1, p, cfg});
      }
    }
  }
  // The bare handler the shim's single-page fault is held against (same placements, same run).
  for (bool write : {false, true}) {
    for (Placement p : all) add({Mode::kMinimal, write, false, 1, p, {}});
  }
  // Fault-around 16 (the shim's default), sequential first touches.
  for (bool write : {false, true}) {
    for (Placement p : all) add({Mode::kZero, write, false, 1, p, shim16});
  }
  for (Placement p : {Placement::kUnpinned, Placement::kSpread, Placement::kSame}) {
    add({Mode::kZero, true, false, 2, p, shim1});
  }
  // Pages with data: from memory (no file), and from a real snapshot file, verify off and on.
  for (Placement p : all) add({Mode::kCopyMem, false, false, 1, p, shim1});
  for (Mode m : {Mode::kSnapshot, Mode::kSnapshotVerify}) {
    for (bool random : {false, true}) {
      for (Placement p : all) add({m, false, random, 1, p, shim1});
    }
  }
  return true;
}();

}  // namespace
}  // namespace uffdlazy::bench

// Weak, so that another bench/*.cpp may bring its own BENCHMARK_MAIN() into the same binary.
__attribute__((weak)) int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
