// A target program for the snapshot capture tests: is a snapshot taken while threads write a
// consistent point-in-time image?
//
// kWriters threads each own one region of kPages pages, all mapped from one call site (ordinals
// 0..kWriters-1) before any thread starts. Each thread writes rounds: round k (from 1) stores k into
// the first 8 bytes (head) and then the last 8 bytes (tail) of page 0, then of page 1, ... page
// kPages-1, then round k+1 from page 0 again. Every store is a release store, so the stores land in
// program order. Read in that order (head 0, tail 0, head 1, tail 1, ...), an image of a region
// taken at one instant is therefore K,...,K,K-1,...,K-1 with a single split point: a page is mixed
// (head K, tail K-1) only if the split falls inside it, and nothing else is ever mixed. A capture
// that copied memory while the thread went on writing shows a second split, a K+1, or a gap.
//
//   run UNTIL [READY]
//                 writes until the file UNTIL exists (the snapshot the run is recorded to: it appears
//                 whole, by rename, once the capture is done), then exits 0; creates READY once every
//                 writer has started, and prints to stderr when the writers started and stopped
//                 (CLOCK_REALTIME ns). Gives up with status 3 after 60 s (a capture that never came,
//                 or came only at exit). Record it with --at after=... or --at signal=USR2 (this
//                 program never touches SIGUSR2). Nothing here depends on how fast the host is.
//   check         (under restore) maps the same regions the same way, checks the invariant on every
//                 region, prints "consistent regions=N" and exits 0, or prints each violation and
//                 exits 1. A region never written (all zeros: nothing was restored) is a violation.
//   selftest      runs the check on hand-made images, consistent and torn, and prints each verdict
//                 (so a test can show the check rejects what it must).
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));
constexpr int kWriters = 4;
constexpr size_t kPages = 256;

char* g_regions[kWriters];
int g_stop = 0;  // accessed atomically

__attribute__((noinline)) char* map_region() {
  void* p = mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(3);
  }
  return static_cast<char*>(p);
}

__attribute__((noinline)) void map_regions() {
  for (auto& r : g_regions) r = map_region();
}

uint64_t* head(char* region, size_t page) { return reinterpret_cast<uint64_t*>(region + page * kPage); }
uint64_t* tail(char* region, size_t page) { return reinterpret_cast<uint64_t*>(region + page * kPage + kPage - 8); }

void* writer(void* arg) {
  char* region = static_cast<char*>(arg);
  for (uint64_t k = 1; !__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE); k++) {
    for (size_t p = 0; p < kPages; p++) {
      __atomic_store_n(head(region, p), k, __ATOMIC_RELEASE);
      __atomic_store_n(tail(region, p), k, __ATOMIC_RELEASE);
    }
  }
  return nullptr;
}

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

int run(const char* until, const char* ready) {
  pthread_t ts[kWriters];
  // Every writer has stored its first word before the start is announced.
  for (int i = 0; i < kWriters; i++) pthread_create(&ts[i], nullptr, writer, g_regions[i]);
  for (char* r : g_regions)
    while (__atomic_load_n(head(r, 0), __ATOMIC_ACQUIRE) == 0) sched_yield();
  const uint64_t started = realtime_ns();
  if (ready) close(open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  int rc = 0;
  for (long waited_ms = 0; access(until, F_OK) != 0; waited_ms++) {
    if (waited_ms > 60 * 1000) {
      std::fprintf(stderr, "snapshot_consistency: %s never appeared\n", until);
      rc = 3;
      break;
    }
    timespec ms = {0, 1000 * 1000};
    nanosleep(&ms, nullptr);
  }
  __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
  for (auto& t : ts) pthread_join(t, nullptr);
  std::fprintf(stderr, "writers started=%llu stopped=%llu\n", (unsigned long long)started,
               (unsigned long long)realtime_ns());
  if (rc == 0) std::printf("run writers=%d pages=%zu done\n", kWriters, kPages);
  return rc;
}

// Checks one region; prints its violations, returns their number.
int check_region(int r) {
  char* region = g_regions[r];
  const size_t n = 2 * kPages;
  auto word = [&](size_t i) { return i % 2 == 0 ? *head(region, i / 2) : *tail(region, i / 2); };
  int bad = 0;
  const uint64_t k = word(0);
  if (k == 0) {
    std::printf("region %d: never written (all zeros)\n", r);
    return 1;
  }
  // K...K then K-1...K-1: find the split, then everything after it must be K-1.
  size_t split = 0;
  while (split < n && word(split) == k) split++;
  for (size_t i = split; i < n; i++) {
    if (word(i) != k - 1) {
      if (bad++ < 5) {
        std::printf("region %d: %s of page %zu is %llu after the split at word %zu (round %llu before it, %llu "
                    "expected after)\n",
                    r, i % 2 ? "tail" : "head", i / 2, (unsigned long long)word(i), split, (unsigned long long)k,
                    (unsigned long long)(k - 1));
      }
    }
  }
  // Between head and tail every byte stays zero: nothing else was ever written.
  for (size_t p = 0; p < kPages; p++) {
    const char* body = region + p * kPage + 8;
    for (size_t i = 0; i < kPage - 16; i++) {
      if (body[i]) {
        if (bad++ < 5) std::printf("region %d: page %zu has a nonzero byte at offset %zu\n", r, p, i + 8);
        break;
      }
    }
  }
  // A mixed page (head K, tail K-1) is legitimate only where the split falls inside it.
  size_t mixed = 0;
  for (size_t p = 0; p < kPages; p++) mixed += *head(region, p) != *tail(region, p);
  if (mixed > 1) {
    std::printf("region %d: %zu pages with head != tail\n", r, mixed);
    bad++;
  }
  std::fprintf(stderr, "region %d: round %llu, split at word %zu of %zu, %zu mixed page(s)\n", r,
               (unsigned long long)k, split, n, mixed);
  if (bad) std::printf("region %d: %d violations\n", r, bad);
  return bad;
}

int check() {
  int bad_regions = 0;
  for (int r = 0; r < kWriters; r++) bad_regions += check_region(r) ? 1 : 0;
  if (bad_regions) {
    std::printf("inconsistent regions=%d of %d\n", bad_regions, kWriters);
    return 1;
  }
  std::printf("consistent regions=%d\n", kWriters);
  return 0;
}

// Fills region 0 as round k written up to word `split` (head 0, tail 0, head 1, ...), k-1 after.
void image(size_t split, uint64_t k) {
  std::memset(g_regions[0], 0, kPages * kPage);
  for (size_t i = 0; i < 2 * kPages; i++) *(i % 2 ? tail(g_regions[0], i / 2) : head(g_regions[0], i / 2)) = i < split ? k : k - 1;
}

int selftest() {
  struct Case {
    const char* name;
    void (*make)();
    bool consistent;
  };
  const Case cases[] = {
      {"split inside a page", [] { image(101, 7); }, true},
      {"split between pages", [] { image(100, 7); }, true},
      {"no split", [] { image(2 * kPages, 7); }, true},
      {"first round half done", [] { image(37, 1); }, true},
      {"second split", [] { image(100, 7); *head(g_regions[0], 200) = 7; *tail(g_regions[0], 200) = 7; }, false},
      {"newer round after the split", [] { image(100, 7); *tail(g_regions[0], 150) = 8; }, false},
      {"gap of two rounds", [] { image(100, 7); *head(g_regions[0], 80) = 5; *tail(g_regions[0], 80) = 5; }, false},
      {"torn page behind the split", [] { image(100, 7); *tail(g_regions[0], 10) = 6; }, false},
      {"stray byte in a page", [] { image(100, 7); g_regions[0][3 * kPage + 100] = 1; }, false},
      {"never written", [] { image(0, 1); }, false},
  };
  int wrong = 0;
  for (const Case& c : cases) {
    c.make();
    std::printf("selftest %s:\n", c.name);
    const bool ok = check_region(0) == 0;
    std::printf("selftest %s: %s\n", c.name, ok == c.consistent ? (ok ? "accepted" : "rejected") : "WRONG VERDICT");
    wrong += ok != c.consistent;
  }
  std::printf("selftest wrong=%d\n", wrong);
  return wrong ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  map_regions();
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "run" && argc > 2) return run(argv[2], argc > 3 ? argv[3] : nullptr);
  if (mode == "check") return check();
  if (mode == "selftest") return selftest();
  std::fprintf(stderr, "usage: snapshot_consistency run UNTIL [READY] | check | selftest\n");
  return 2;
}
