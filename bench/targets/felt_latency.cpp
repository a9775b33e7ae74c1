// felt_latency: what a program feels on first touch. Maps N fresh anonymous pages with mmap, then
// touches each page once and times every touch itself (clock_gettime right before and right after
// the access), and prints its own percentiles per phase. Run it plain (the kernel's demand-zero
// fault) or under the shim (LD_PRELOAD=libuffdlazy.so) and compare with the shim's JSON report;
// scripts/bench.sh does both.
//
//   felt_latency [--pages N] [--phase read|write|both] [--random]
//
// Phases: "read" touches every page of one mapping with a load, "write" every page of a second
// mapping with a store; "both" runs read then write. Output, one line per phase:
//   phase=read pages=4096 order=seq p50_ns=... p90_ns=... p99_ns=... max_ns=... mean_ns=... total_ns=...
// Latencies include one clock read (~20-30 ns). Every buffer the timing needs is allocated and
// touched before the timed loop, so only the target pages fault inside it.
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t quantile(std::vector<uint64_t> v, double q) {
  if (v.empty()) return 0;
  size_t k = size_t(q * double(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k];
}

int run_phase(bool write, size_t pages, const std::vector<uint32_t>& order, bool random) {
  const size_t ps = size_t(sysconf(_SC_PAGESIZE));
  void* m = mmap(nullptr, pages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("felt_latency: mmap");
    return 1;
  }
  // 4 KiB faults in both runs: THP would give the plain run 2 MiB faults (a registered range never
  // gets a huge page). NOHUGEPAGE sends no userfaultfd event.
  madvise(m, pages * ps, MADV_NOHUGEPAGE);
  char* base = static_cast<char*>(m);
  std::vector<uint64_t> lat(pages, 1);  // allocated and written before the timed loop
  uint64_t sink = 0;
  const uint64_t start = now_ns();
  for (size_t i = 0; i < pages; i++) {
    volatile char* p = base + size_t(order[i]) * ps;
    uint64_t t0 = now_ns();
    if (write) {
      *p = 1;
    } else {
      sink += uint64_t(*p);
    }
    uint64_t t1 = now_ns();
    lat[i] = t1 - t0;
  }
  const uint64_t total = now_ns() - start;
  uint64_t sum = 0, mx = 0;
  for (uint64_t v : lat) {
    sum += v;
    mx = std::max(mx, v);
  }
  printf("phase=%s pages=%zu order=%s p50_ns=%llu p90_ns=%llu p99_ns=%llu max_ns=%llu mean_ns=%llu total_ns=%llu\n",
         write ? "write" : "read", pages, random ? "random" : "seq",
         (unsigned long long)quantile(lat, 0.50), (unsigned long long)quantile(lat, 0.90),
         (unsigned long long)quantile(lat, 0.99), (unsigned long long)mx, (unsigned long long)(sum / pages),
         (unsigned long long)total);
  fflush(stdout);
  if (sink == 12345) puts("");  // keeps the reads
  munmap(m, pages * ps);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  size_t pages = 4096;
  std::string phase = "both";
  bool random = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pages") && i + 1 < argc) {
      pages = size_t(strtoull(argv[++i], nullptr, 10));
    } else if (!strcmp(argv[i], "--phase") && i + 1 < argc) {
      phase = argv[++i];
    } else if (!strcmp(argv[i], "--random")) {
      random = true;
    } else {
      fprintf(stderr, "usage: felt_latency [--pages N] [--phase read|write|both] [--random]\n");
      return 2;
    }
  }
  if (pages < 1 || (phase != "read" && phase != "write" && phase != "both")) {
    fprintf(stderr, "felt_latency: bad --pages or --phase\n");
    return 2;
  }
  std::vector<uint32_t> order(pages);
  for (size_t i = 0; i < pages; i++) order[i] = uint32_t(i);
  if (random) {
    std::mt19937 rng(12345);
    std::shuffle(order.begin(), order.end(), rng);
  }
  int rc = 0;
  if (phase != "write") rc |= run_phase(false, pages, order, random);
  if (phase != "read") rc |= run_phase(true, pages, order, random);
  return rc;
}
