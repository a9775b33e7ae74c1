// Event costs: madvise(MADV_DONTNEED) of a filled range (REMOVE), munmap (UNMAP) and an mremap move
// (REMAP, then UNMAP of the old range) on a range registered with the core Monitor running, against
// the same call on an unregistered range. The calling thread blocks until the monitor has read the
// event, so the registered call costs a round trip to the monitor thread.
//
// Time reported per iteration is one call (manual timing around the syscall only).
#include "bench/bench_harness.h"

namespace uffdlazy::bench {
namespace {

constexpr size_t kEventPages = 64;  // 256 KiB, populated before the call
constexpr int kEventIterations = 400;

enum class Call { kDontneed, kMunmap, kMremap };

const char* call_name(Call c) {
  switch (c) {
    case Call::kDontneed: return "madvise-dontneed";
    case Call::kMunmap: return "munmap";
    case Call::kMremap: return "mremap-move";
  }
  return "?";
}

void run_event(benchmark::State& state, Call call, bool registered, Placement placement) {
  const size_t len = kEventPages * page_size();
  std::unique_ptr<MonitorHarness> harness;
  if (registered) {
    harness = std::make_unique<MonitorHarness>(placement, nullptr);
    if (!harness->ok()) {
      state.SkipWithError(harness->error().c_str());
      return;
    }
  }
  LatencySamples lat;
  lat.reserve(size_t(state.max_iterations));
  for (auto _ : state) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED || (harness && !harness->adopt(p, kEventPages, -1))) {
      state.SkipWithError("mmap or registration failed");
      break;
    }
    void* dest = nullptr;
    if (call == Call::kMremap) {
      dest = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (dest == MAP_FAILED) {
        state.SkipWithError("mmap failed");
        break;
      }
    }
    bool ok = true;
    uint64_t t0 = now_ns();
    switch (call) {
      case Call::kDontneed: ok = madvise(p, len, MADV_DONTNEED) == 0; break;
      case Call::kMunmap: ok = munmap(p, len) == 0; break;
      case Call::kMremap: ok = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dest) == dest; break;
    }
    uint64_t t1 = now_ns();
    if (!ok) {
      state.SkipWithError("the call failed");
      break;
    }
    state.SetIterationTime(double(t1 - t0) * 1e-9);
    lat.add(t1 - t0);
    if (call == Call::kDontneed) munmap(p, len);
    if (call == Call::kMremap) munmap(dest, len);
  }
  lat.report(state);
  if (harness) {
    harness->monitor().sync();
    const MonitorCounters& c = harness->counters();
    uint64_t events = call == Call::kDontneed ? c.remove.load() : call == Call::kMunmap ? c.unmap.load() : c.remap.load();
    // Sanity: one event of the call's kind per call (1.0 expected).
    state.counters["events_per_call"] = state.iterations() ? double(events) / double(state.iterations()) : 0;
  }
}

const bool registered = [] {
  for (Call call : {Call::kDontneed, Call::kMunmap, Call::kMremap}) {
    std::string base = std::string("event/") + call_name(call);
    benchmark::RegisterBenchmark((base + "/unregistered").c_str(), run_event, call, false, Placement::kUnpinned)
        ->Iterations(kEventIterations)
        ->UseManualTime()
        ->Unit(benchmark::kNanosecond);
    for (Placement p : {Placement::kUnpinned, Placement::kCross, Placement::kSame}) {
      benchmark::RegisterBenchmark((base + "/registered/" + placement_name(p)).c_str(), run_event, call, true, p)
          ->Iterations(kEventIterations)
          ->UseManualTime()
          ->Unit(benchmark::kNanosecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace uffdlazy::bench
