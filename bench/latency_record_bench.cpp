// What the latency accounting adds to each fault the monitor handles: the histograms (overall,
// per kind, per region), the timeline, the counters and the trace append, as LatencyObserver does
// them. scripts/bench.sh runs BM_ObserverFault and BM_ClockRead in the same process as the fault
// benchmarks and reports "measurement overhead" = one BM_ObserverFault + two clock reads per fault.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "core/latency/fault_stats.h"
#include "core/latency/fault_trace.h"
#include "core/latency/latency_observer.h"
#include "core/base/mono_clock.h"

namespace {

using namespace uffdlazy;

std::vector<FaultRecord> sample_faults(size_t n, uint32_t regions) {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> lat(9.0, 1.0);
  std::vector<FaultRecord> v;
  uint64_t t = 1'000'000'000;
  for (size_t i = 0; i < n; i++) {
    t += 1000 + rng() % 20000;
    v.push_back(LatencyObserver::make_record(t, t + uint64_t(lat(rng)), 100, 0x7f0000000000ull + i * 4096, i & 1,
                                             uint32_t(rng() % regions), Resolution(rng() % 4), 1));
  }
  return v;
}

void BM_HistogramRecord(benchmark::State& state) {
  auto h = std::make_unique<LatencyHistogram>();
  auto faults = sample_faults(4096, 1);
  size_t i = 0;
  for (auto _ : state) {
    h->record(faults[i++ & 4095].latency_ns);
  }
  benchmark::DoNotOptimize(h->count());
}
BENCHMARK(BM_HistogramRecord);

// Stats + trace per fault; the argument is how many distinct regions the faults spread over.
void BM_RecordFault(benchmark::State& state) {
  auto stats = std::make_unique<FaultStats>();
  FaultTrace trace;
  trace.init(1 << 20);
  LatencyObserver obs(stats.get(), &trace);
  auto faults = sample_faults(4096, uint32_t(state.range(0)));
  stats->start(faults[0].timestamp_ns);
  size_t i = 0;
  for (auto _ : state) {
    const FaultRecord& f = faults[i++ & 4095];
    stats->record_fault(f);
    trace.append(f);
    // Wrapping the trace keeps the cost that of a trace that is still filling.
    if (trace.count() == trace.capacity()) trace.clear();
  }
  benchmark::DoNotOptimize(stats->totals().faults.load());
}
BENCHMARK(BM_RecordFault)->Arg(1)->Arg(16)->Arg(200);

// One fault as the monitor records it: LatencyObserver::fault_served (make the record, then
// FaultStats::record_fault: overall, per-kind and per-region histograms, timeline, totals; then
// the trace append), with the trace on, i.e. the most the shim does per fault. One region, as in
// the fault benchmarks and the felt-latency target.
void BM_ObserverFault(benchmark::State& state) {
  auto stats = std::make_unique<FaultStats>();
  FaultTrace trace;
  trace.init(1 << 20);
  LatencyObserver obs(stats.get(), &trace, 0);
  auto faults = sample_faults(4096, 1);
  for (auto& f : faults) f.region_id = 1;
  stats->start(faults[0].timestamp_ns);
  size_t i = 0;
  for (auto _ : state) {
    const FaultRecord& f = faults[i++ & 4095];
    obs.fault_served(f.timestamp_ns, f.timestamp_ns + f.latency_ns, f.tid, f.address, f.flags & FaultRecord::kWrite,
                     f.region_id, int(f.resolution), f.pages);
    if (trace.count() == trace.capacity()) trace.clear();
  }
  benchmark::DoNotOptimize(stats->totals().faults.load());
}
BENCHMARK(BM_ObserverFault);

// The two clock reads that bracket each fault, for scale.
void BM_ClockRead(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(mono_now_ns());
}
BENCHMARK(BM_ClockRead);

}  // namespace

// The bench binary has no main of its own yet. Weak, so a shared bench main added later wins
// without a duplicate-symbol error.
__attribute__((weak)) int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
