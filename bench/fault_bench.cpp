// First-touch fault costs: the kernel's own demand-zero fault against the same touch served by the
// core Monitor (zero source, and a copy-from-memory source), for read and write faults, sequential
// and random page order, one and two faulting threads, and three placements of the monitor thread
// relative to the faulting thread. Run through scripts/bench.sh, which writes bench/RESULTS.md.
//
// Time reported per iteration is per page: each iteration touches kPages fresh pages and reports
// (time of the touch loop) / kPages through manual timing, so mmap, registration and munmap are
// not counted. lat_p50_ns / lat_p99_ns are per-access latencies the faulting thread measured
// itself (one clock read between consecutive accesses), i.e. what the program felt.
#include <pthread.h>

#include <atomic>
#include <random>
#include <thread>

#include "bench/bench_harness.h"

namespace uffdlazy::bench {
namespace {

constexpr size_t kPages = 1024;        // pages touched per iteration (4 MiB)
constexpr int kKernelIterations = 32;  // cheap: more samples
constexpr int kMonitorIterations = 8;  // up to ~55 us per page across vCPUs

enum class Mode {
  kPresent,  // pages already mapped: the floor (loop + clock read), no fault at all
  kKernel,   // unregistered: the kernel's demand-zero fault
  kZero,     // registered, Monitor with no source: UFFDIO_ZEROPAGE (read) / COPY of zeros (write)
  kCopyMem,  // registered, Monitor with MemorySource: UFFDIO_COPY from a pre-filled buffer
};

struct FaultCase {
  Mode mode;
  bool write;
  bool random;
  int threads;
  Placement placement;
};

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

void run_faults(benchmark::State& state, FaultCase c) {
  const size_t ps = page_size();
  std::unique_ptr<MemorySource> source;
  std::unique_ptr<MonitorHarness> harness;
  if (c.mode == Mode::kCopyMem) {
    source = std::make_unique<MemorySource>(kPages);
    if (!source->ok()) {
      state.SkipWithError("source buffer allocation failed");
      return;
    }
  }
  if (c.mode == Mode::kZero || c.mode == Mode::kCopyMem) {
    harness = std::make_unique<MonitorHarness>(c.placement, source.get());
    if (!harness->ok()) {
      state.SkipWithError(harness->error().c_str());
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
  LatencySamples lat;
  lat.reserve(size_t(state.max_iterations) * kPages);

  for (auto _ : state) {
    char* base = harness ? harness->region(kPages, c.mode == Mode::kCopyMem ? 0 : -1) : kernel_region(kPages);
    if (!base) {
      state.SkipWithError("mmap or registration failed");
      break;
    }
    if (c.mode == Mode::kPresent) std::memset(base, 0, kPages * ps);
    uint32_t* out = lat.grab(kPages);
    uint64_t ns = c.threads == 2 ? touch_two_threads(c.write, base, order, out, cpus)
                                 : touch_pages(c.write, base, order.data(), kPages, out);
    state.SetIterationTime(double(ns) * 1e-9 / double(kPages));
    if (harness && c.threads == 1) {
      int mon = harness->monitor_cpu();
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
    munmap(base, kPages * ps);
  }
  lat.report(state);
  if (harness) {
    harness->monitor().sync();
    double pages = double(state.iterations()) * double(kPages);
    // Sanity: one monitor-served fault per page touched (1.0 expected).
    state.counters["mon_faults_per_page"] = pages > 0 ? double(harness->counters().faults.load()) / pages : 0;
    // Fraction of iterations after which the monitor had last run on the faulting thread's CPU.
    if (cpu_samples) state.counters["mon_same_cpu"] = double(same_cpu_samples) / double(cpu_samples);
  }
}

std::string case_name(const FaultCase& c) {
  std::string n = "fault/";
  switch (c.mode) {
    case Mode::kPresent: n += "present"; break;
    case Mode::kKernel: n += "kernel"; break;
    case Mode::kZero: n += "zero"; break;
    case Mode::kCopyMem: n += "copy-mem"; break;
  }
  n += c.write ? "/write" : "/read";
  n += c.random ? "/random" : "/seq";
  n += c.threads == 2 ? "/2threads" : "/1thread";
  if (c.mode == Mode::kZero || c.mode == Mode::kCopyMem || c.threads == 2) {
    n += std::string("/") + placement_name(c.placement);
  }
  return n;
}

void add(const FaultCase& c) {
  int iters = (c.mode == Mode::kKernel || c.mode == Mode::kPresent) ? kKernelIterations : kMonitorIterations;
  benchmark::RegisterBenchmark(case_name(c).c_str(), run_faults, c)
      ->Iterations(iters)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

const bool registered = [] {
  const Placement all[] = {Placement::kUnpinned, Placement::kCross, Placement::kSame};
  const Placement any = Placement::kUnpinned;
  add({Mode::kPresent, false, false, 1, any});
  add({Mode::kPresent, true, false, 1, any});
  for (bool random : {false, true}) {
    for (bool write : {false, true}) add({Mode::kKernel, write, random, 1, any});
  }
  add({Mode::kKernel, true, false, 2, Placement::kSpread});
  add({Mode::kKernel, true, false, 2, Placement::kUnpinned});
  for (bool random : {false, true}) {
    for (bool write : {false, true}) {
      for (Placement p : all) add({Mode::kZero, write, random, 1, p});
    }
  }
  for (Placement p : {Placement::kUnpinned, Placement::kSpread, Placement::kSame}) add({Mode::kZero, true, false, 2, p});
  for (bool write : {false, true}) {
    for (Placement p : all) add({Mode::kCopyMem, write, false, 1, p});
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
