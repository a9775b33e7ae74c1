// A target program for the snapshot record/restore tests.
//
// map_regions() runs first in every mode, so the recording run and the restoring run make the
// same mappings from the same call sites in the same order: three regions from three different
// call sites, and four of one length from one shared call site (ordinals 1..4, after a small
// mapping from the same site). Each region is at least 256 KiB.
//
//   fill [STATUS]      writes the pattern below and exits with STATUS (default 0): the recording
//                      run, snapshot taken at exit.
//   check SCENARIO     (under restore) checks every page against the pattern, after doing what
//                      the scenario says, prints a deterministic account (counts, never
//                      addresses) and exits 1 on any mismatch. Stdout is line-buffered, so the
//                      lines of regions already checked survive a kill.
//   check core DIR     (under restore) reads region 0's first 16 pages, then aborts in DIR with
//                      the rest still owed (a core file for the test to read); region 0's address
//                      on stderr.
//
// The pattern of region r, page p, by c = (p + 3r) % 16:
//   c == 15        absent: never touched (a restore must leave it reading zeros)
//   c == 7         zero: written, then zeroed (stored as a zero page)
//   c == 3, 11     duplicate: one of two contents shared by all such pages of all regions
//   otherwise      data: a page of its own; word 0 is the tag 0xD47A'0000'rrrr'pppp, the other
//                  words a hash of (r, p, word)
// Every region has a multiple of 16 pages, so per region: 1/16 absent, 1/16 zero, 2/16
// duplicate-class, 12/16 unique.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <errno.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/targets/deny_userfaultfd.h"

extern char** environ;

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));
constexpr int kRegions = 7;
constexpr uint64_t kTagMagic = 0xD47A000000000000ull;

struct Region {
  char* base = nullptr;
  size_t pages = 0;     // pages the check looks at (a scenario may grow a region)
  size_t recorded = 0;  // pages the recording had
};
Region g_regions[kRegions];

enum class Kind { kAbsent, kZero, kDup0, kDup1, kData };

Kind kind_of(int r, size_t p) {
  switch ((p + 3 * size_t(r)) % 16) {
    case 15: return Kind::kAbsent;
    case 7: return Kind::kZero;
    case 3: return Kind::kDup0;
    case 11: return Kind::kDup1;
    default: return Kind::kData;
  }
}

uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full ^ c * 0x165667B19E3779F9ull;
  h ^= h >> 31;
  h *= 0xD6E8FEB86659FD93ull;
  return h ^ (h >> 29);
}

// The recorded content of page p of region r.
void expected_page(int r, size_t p, uint64_t* out) {
  const size_t words = kPage / 8;
  switch (kind_of(r, p)) {
    case Kind::kAbsent:
    case Kind::kZero:
      std::memset(out, 0, kPage);
      return;
    case Kind::kDup0:
    case Kind::kDup1: {
      const uint64_t v = kind_of(r, p) == Kind::kDup0 ? 0 : 1;
      for (size_t w = 0; w < words; w++) out[w] = mix(0xDDDD, v, w);
      return;
    }
    case Kind::kData:
      out[0] = kTagMagic | (uint64_t(r) << 16) | p;
      for (size_t w = 1; w < words; w++) out[w] = mix(uint64_t(r), p, w);
      return;
  }
}

char* check_map(void* p) {
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(3);
  }
  return static_cast<char*>(p);
}

// One call site for several mappings: their ordinals tell them apart.
__attribute__((noinline)) char* map_from_shared_site(size_t pages) {
  return check_map(mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}

// The extra mapping of a run made to have another layout: a call site of its own.
__attribute__((noinline)) char* map_extra_first() {
  return check_map(mmap(nullptr, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}

// Every mapping a restore should match, from the same call sites in the same order every run.
__attribute__((noinline)) void map_regions() {
  const int rw = PROT_READ | PROT_WRITE, priv = MAP_PRIVATE | MAP_ANONYMOUS;
  g_regions[0].base = check_map(mmap(nullptr, 96 * kPage, rw, priv, -1, 0));  // site A
  g_regions[0].pages = 96;
  g_regions[1].base = check_map(mmap(nullptr, 64 * kPage, rw, priv, -1, 0));  // site B
  g_regions[1].pages = 64;
  g_regions[2].base = check_map(mmap(nullptr, 80 * kPage, rw, priv, -1, 0));  // site C
  g_regions[2].pages = 80;
  // Site D also makes one small mapping first, below the shim's default size threshold: the
  // ordinals of the regions after it must not depend on whether the shim registers it.
  map_from_shared_site(4);
  for (int r = 3; r < kRegions; r++) {  // site D, ordinals 1..4, all the same length
    g_regions[r].base = map_from_shared_site(64);
    g_regions[r].pages = 64;
  }
  for (auto& g : g_regions) g.recorded = g.pages;
}

// Fresh memory somewhere else, for scenarios that move regions (a call site of its own).
__attribute__((noinline)) char* map_elsewhere(size_t pages) {
  return check_map(mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}

int fill(int status) {
  std::vector<uint64_t> page(kPage / 8);
  for (int r = 0; r < kRegions; r++) {
    for (size_t p = 0; p < g_regions[r].pages; p++) {
      char* at = g_regions[r].base + p * kPage;
      switch (kind_of(r, p)) {
        case Kind::kAbsent:
          break;  // never touched
        case Kind::kZero:
          expected_page(r, (p + 1) % g_regions[r].pages, page.data());  // some content first
          std::memset(page.data(), 0x5A, 64);
          std::memcpy(at, page.data(), kPage);
          std::memset(at, 0, kPage);
          break;
        default:
          expected_page(r, p, page.data());
          std::memcpy(at, page.data(), kPage);
      }
    }
  }
  std::printf("fill regions=%d done\n", kRegions);
  return status;
}

// ---- check ----

// Pages a scenario expects to read zeros, whatever the recording had there.
bool (*g_zeroed)(int r, size_t p) = [](int, size_t) { return false; };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kAbsent: return "absent";
    case Kind::kZero: return "zero";
    case Kind::kDup0: return "duplicate-0";
    case Kind::kDup1: return "duplicate-1";
    case Kind::kData: return "data";
  }
  return "?";
}

// What a page holds, in words, for a mismatch line.
std::string describe(const uint64_t* got) {
  bool zero = true;
  for (size_t w = 0; w < kPage / 8; w++) zero &= got[w] == 0;
  if (zero) return "zeros";
  char buf[96];
  if ((got[0] & 0xFFFF000000000000ull) == kTagMagic) {
    std::snprintf(buf, sizeof buf, "data of region %llu page %llu%s", (unsigned long long)(got[0] >> 16 & 0xFFFF),
                  (unsigned long long)(got[0] & 0xFFFF), got[1] == mix(got[0] >> 16 & 0xFFFF, got[0] & 0xFFFF, 1) ? "" : " (damaged)");
  } else if (got[0] == mix(0xDDDD, 0, 0) || got[0] == mix(0xDDDD, 1, 0)) {
    std::snprintf(buf, sizeof buf, "duplicate-%d content", got[0] == mix(0xDDDD, 0, 0) ? 0 : 1);
  } else {
    std::snprintf(buf, sizeof buf, "other content (word 0 %016llx)", (unsigned long long)got[0]);
  }
  return buf;
}

// True when page p of region r holds what it should; on a mismatch, why (if `why` is given).
bool page_ok(int r, size_t p, uint64_t* scratch, std::string* why) {
  const uint64_t* got = reinterpret_cast<const uint64_t*>(g_regions[r].base + p * kPage);
  const bool zeroed = g_zeroed(r, p) || p >= g_regions[r].recorded;
  if (zeroed) {
    std::memset(scratch, 0, kPage);
  } else {
    expected_page(r, p, scratch);
  }
  if (std::memcmp(got, scratch, kPage) == 0) return true;
  if (why) {
    *why = std::string("expected ") + (zeroed ? "zeros (dropped)" : kind_name(kind_of(r, p))) + ", got " + describe(got);
  }
  return false;
}

struct Account {
  size_t pages = 0, recorded = 0, zeroed = 0, mismatches = 0;
};

// Checks every page of every region, one line per region.
Account check_all_regions() {
  Account total;
  std::vector<uint64_t> scratch(kPage / 8);
  for (int r = 0; r < kRegions; r++) {
    Account a;
    int shown = 0;
    for (size_t p = 0; p < g_regions[r].pages; p++) {
      std::string why;
      a.pages++;
      if (g_zeroed(r, p) || p >= g_regions[r].recorded) {
        a.zeroed++;
      } else {
        a.recorded++;
      }
      if (!page_ok(r, p, scratch.data(), &why)) {
        a.mismatches++;
        if (shown++ < 4) std::printf("MISMATCH region %d page %zu: %s\n", r, p, why.c_str());
      }
    }
    std::printf("region %d: pages=%zu recorded=%zu zeroed=%zu %s\n", r, a.pages, a.recorded, a.zeroed,
                a.mismatches ? "MISMATCHES" : "ok");
    total.pages += a.pages;
    total.recorded += a.recorded;
    total.zeroed += a.zeroed;
    total.mismatches += a.mismatches;
  }
  return total;
}

size_t verify_quietly() {
  std::vector<uint64_t> scratch(kPage / 8);
  size_t bad = 0;
  for (int r = 0; r < kRegions; r++)
    for (size_t p = 0; p < g_regions[r].pages; p++) bad += !page_ok(r, p, scratch.data(), nullptr);
  return bad;
}

// Reads (and checks) pages [first, end) of region r: they are served now.
size_t touch(int r, size_t first, size_t end) {
  std::vector<uint64_t> scratch(kPage / 8);
  size_t bad = 0;
  for (size_t p = first; p < end; p++) bad += !page_ok(r, p, scratch.data(), nullptr);
  return bad;
}

int failures = 0;

void expect(bool ok, const char* what) {
  if (ok) return;
  failures++;
  std::printf("FAIL %s\n", what);
}

// ---- scenarios: each prepares, may print lines of its own, then the full check runs ----

void scenario_dontneed() {
  // Region 0: pages 16..31 served first, then 16..47 dropped: all of them read zeros after.
  expect(touch(0, 16, 32) == 0, "pages served before madvise hold the recording");
  expect(madvise(g_regions[0].base + 16 * kPage, 32 * kPage, MADV_DONTNEED) == 0, "madvise DONTNEED");
  g_zeroed = [](int r, size_t p) { return r == 0 && p >= 16 && p < 48; };
  std::printf("dontneed: region 0 pages 16..47 dropped\n");
}

void scenario_munmap_remap() {
  // Region 1: pages 8..23 unmapped, then fresh memory mapped there with MAP_FIXED.
  char* hole = g_regions[1].base + 8 * kPage;
  expect(munmap(hole, 16 * kPage) == 0, "munmap");
  void* p = mmap(hole, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  expect(p == hole, "MAP_FIXED into the hole");
  g_zeroed = [](int r, size_t p) { return r == 1 && p >= 8 && p < 24; };
  std::printf("munmap_remap: region 1 pages 8..23 remapped\n");
}

void scenario_mremap() {
  // Region 2, never touched, moves; region 0 moves after half of it was served.
  char* dst2 = map_elsewhere(80);
  void* m2 = mremap(g_regions[2].base, 80 * kPage, 80 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dst2);
  expect(m2 == dst2, "mremap move of an untouched region");
  g_regions[2].base = dst2;
  expect(touch(0, 0, 48) == 0, "pages served before the move hold the recording");
  char* dst0 = map_elsewhere(96);
  void* m0 = mremap(g_regions[0].base, 96 * kPage, 96 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dst0);
  expect(m0 == dst0, "mremap move of a half-served region");
  g_regions[0].base = dst0;
  // Region 3 grows from 64 to 96 pages: the grown part reads zeros.
  void* g3 = mremap(g_regions[3].base, 64 * kPage, 96 * kPage, MREMAP_MAYMOVE);
  expect(g3 != MAP_FAILED, "mremap grow");
  if (g3 != MAP_FAILED) {
    g_regions[3].base = static_cast<char*>(g3);
    g_regions[3].pages = 96;
  }
  // Region 4 shrinks to 32 pages and grows back to 64: the cut tail reads zeros.
  void* s4 = mremap(g_regions[4].base, 64 * kPage, 32 * kPage, 0);
  expect(s4 == g_regions[4].base, "mremap shrink");
  void* r4 = mremap(g_regions[4].base, 32 * kPage, 64 * kPage, MREMAP_MAYMOVE);
  expect(r4 != MAP_FAILED, "mremap regrow");
  if (r4 != MAP_FAILED) g_regions[4].base = static_cast<char*>(r4);
  g_zeroed = [](int r, size_t p) { return r == 4 && p >= 32; };
  std::printf("mremap: region 2 moved untouched, region 0 moved half served, region 3 grown to 96, "
              "region 4 cut to 32 and regrown\n");
}

void scenario_fork() {
  // Half of every region served, then fork: the child must see every page, served or not.
  for (int r = 0; r < kRegions; r++) expect(touch(r, 0, g_regions[r].pages / 2) == 0, "first half before fork");
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(verify_quietly() ? 1 : 0);  // _exit: no exit-time lines from the child
  int status = 0;
  waitpid(pid, &status, 0);
  const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  expect(child_ok, "the child saw every page as recorded");
  std::printf("fork: child %s\n", child_ok ? "ok" : "saw wrong pages");
}

int child_checks(void*) { return verify_quietly() ? 1 : 0; }

// A child made some other way than fork(), while every page is still owed: what the child sees,
// and the parent afterwards, must be the recording. `how`: _Fork, clone (no CLONE_VM), vfork,
// posix_spawn, system, or fork_without_uffd (fork after the process lost access to userfaultfd:
// the child cannot page lazily and must still run, with the parent's exact memory).
void scenario_fork_via(const std::string& how) {
  std::fflush(stdout);
  int status = -1;
  if (how == "_Fork") {
    pid_t pid = _Fork();
    if (pid == 0) _exit(verify_quietly() ? 1 : 0);
    waitpid(pid, &status, 0);
  } else if (how == "clone") {
    const size_t stack_size = 1 << 20;
    char* stack = static_cast<char*>(mmap(nullptr, stack_size, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0));
    pid_t pid = clone(child_checks, stack + stack_size, SIGCHLD, nullptr);
    waitpid(pid, &status, 0);
  } else if (how == "vfork") {
    // The vfork child shares the parent's memory: the parent's monitor serves its faults.
    pid_t pid = vfork();
    if (pid == 0) _exit(verify_quietly() ? 1 : 0);
    waitpid(pid, &status, 0);
  } else if (how == "posix_spawn") {
    pid_t pid;
    char* argv[] = {const_cast<char*>("true"), nullptr};
    if (posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ) == 0) waitpid(pid, &status, 0);
  } else if (how == "system") {
    status = system("true");
  } else if (how == "fork_without_uffd") {
    if (deny_userfaultfd::deny() != 0) std::exit(4);
    pid_t pid = fork();
    if (pid == 0) _exit(verify_quietly() ? 1 : 0);
    waitpid(pid, &status, 0);
  } else {
    std::fprintf(stderr, "unknown way to make a child: %s\n", how.c_str());
    std::exit(2);
  }
  const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  expect(child_ok, "the child ran and saw every page as recorded");
  std::printf("%s: child %s\n", how.c_str(), child_ok ? "ok" : "failed");
}

// Memory the program takes for itself: whatever the snapshot still owes there is in place first.
void scenario_claim_lock() {
  // Region 0: half served, then locked. Region 1: locked on fault. Region 2: locked, then grown by
  // mremap (the kernel populates the new part, which reads zeros).
  expect(touch(0, 0, 48) == 0, "pages served before mlock hold the recording");
  expect(mlock(g_regions[0].base, 96 * kPage) == 0, "mlock");
  expect(mlock2(g_regions[1].base, 64 * kPage, MLOCK_ONFAULT) == 0, "mlock2 ONFAULT");
  expect(mlock(g_regions[2].base, 80 * kPage) == 0, "mlock of region 2");
  void* g2 = mremap(g_regions[2].base, 80 * kPage, 96 * kPage, MREMAP_MAYMOVE);
  expect(g2 != MAP_FAILED, "mremap grow of a locked region");
  if (g2 != MAP_FAILED) {
    g_regions[2].base = static_cast<char*>(g2);
    g_regions[2].pages = 96;
  }
  std::printf("claim_lock: region 0 half served and locked, region 1 locked on fault, region 2 locked and grown "
              "to 96\n");
}

std::atomic<int> g_own_faults{0};

void* own_handler(void* arg) {
  const int uffd = int(reinterpret_cast<intptr_t>(arg));
  for (;;) {
    pollfd p = {uffd, POLLIN, 0};
    if (poll(&p, 1, -1) <= 0) continue;
    uffd_msg m;
    if (read(uffd, &m, sizeof m) != sizeof m || m.event != UFFD_EVENT_PAGEFAULT) continue;
    uffdio_zeropage z = {{m.arg.pagefault.address & ~uint64_t(kPage - 1), kPage}, 0, 0};
    // Counted before the answer wakes the faulting thread (which may print the count at once).
    g_own_faults++;
    if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) != 0) g_own_faults--;
  }
  return nullptr;
}

void scenario_claim_uffd() {
  // The program's own userfaultfd registers region 3 and pages 16..47 of region 4, and answers with
  // zeros: only the pages the recording never had may reach its handler.
  const int uffd = int(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  uffdio_api api = {UFFD_API, 0, 0};
  expect(uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) == 0, "own userfaultfd");
  uffdio_register a = {{uint64_t(uintptr_t(g_regions[3].base)), 64 * kPage}, UFFDIO_REGISTER_MODE_MISSING, 0};
  uffdio_register b = {{uint64_t(uintptr_t(g_regions[4].base + 16 * kPage)), 32 * kPage}, UFFDIO_REGISTER_MODE_MISSING,
                       0};
  expect(ioctl(uffd, UFFDIO_REGISTER, &a) == 0, "register region 3");
  expect(ioctl(uffd, UFFDIO_REGISTER, &b) == 0, "register region 4 pages 16..47");
  pthread_t t;
  pthread_create(&t, nullptr, own_handler, reinterpret_cast<void*>(intptr_t(uffd)));
  pthread_detach(t);
  expect(touch(3, 0, 64) == 0 && touch(4, 16, 48) == 0, "pages read through the program's handler");
  std::printf("claim_uffd: handler faults=%d\n", g_own_faults.load());
}

// The process dumps core with every page of region 0 but the first 16 still owed.
[[noreturn]] void scenario_core(const char* dir) {
  expect(touch(0, 0, 16) == 0, "pages served before the crash");
  rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_CORE, &unlimited);
  if (chdir(dir) != 0) std::exit(2);
  std::fprintf(stderr, "core: region 0 at %p\n", static_cast<void*>(g_regions[0].base));
  std::fflush(stderr);
  abort();
}

void scenario_threads() {
  // 8 threads read and check every page of every region at once.
  constexpr int kThreads = 8;
  std::atomic<int> ready{0};
  std::atomic<size_t> bad{0};
  struct Arg {
    std::atomic<int>* ready;
    std::atomic<size_t>* bad;
    int index;
  };
  pthread_t ts[kThreads];
  Arg args[kThreads];
  for (int i = 0; i < kThreads; i++) {
    args[i] = {&ready, &bad, i};
    pthread_create(&ts[i], nullptr, [](void* v) -> void* {
      auto* a = static_cast<Arg*>(v);
      a->ready->fetch_add(1);
      while (a->ready->load() < kThreads) {
      }
      std::vector<uint64_t> scratch(kPage / 8);
      size_t bad = 0;
      // Each thread starts at a different region, so every page sees concurrent faults.
      for (int k = 0; k < kRegions; k++) {
        const int r = (k + a->index) % kRegions;
        for (size_t p = 0; p < g_regions[r].pages; p++) bad += !page_ok(r, p, scratch.data(), nullptr);
      }
      a->bad->fetch_add(bad);
      return nullptr;
    }, &args[i]);
  }
  for (auto& t : ts) pthread_join(t, nullptr);
  expect(bad.load() == 0, "every thread saw every page as recorded");
  std::printf("threads: %d readers %s\n", kThreads, bad.load() ? "saw wrong pages" : "ok");
}

void scenario_twice() {
  // Region 1, pages 0..3: served, dropped, read again: zeros (a page is served at most once).
  expect(touch(1, 0, 4) == 0, "first read holds the recording");
  expect(madvise(g_regions[1].base, 4 * kPage, MADV_DONTNEED) == 0, "madvise DONTNEED");
  g_zeroed = [](int r, size_t p) { return r == 1 && p < 4; };
  std::printf("twice: region 1 pages 0..3 read, dropped, read again\n");
}

void scenario_partial() {
  // Only every third page of every region is served; nothing is written.
  for (int r = 0; r < kRegions; r++) {
    size_t bad = 0;
    std::vector<uint64_t> scratch(kPage / 8);
    for (size_t p = 0; p < g_regions[r].pages; p += 3) bad += !page_ok(r, p, scratch.data(), nullptr);
    expect(bad == 0, "partially read region holds the recording");
  }
  std::printf("partial: every third page read\n");
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  // A run whose layout differs from the recording's: one more mapping first, from a call site of
  // its own, shifts every later address (unless it finds a hole above them all).
  if (getenv("SNAPSHOT_RULES_EXTRA_FIRST")) map_extra_first();
  map_regions();
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "fill") return fill(argc > 2 ? std::atoi(argv[2]) : 0);
  if (mode != "check" || argc < 3) {
    std::fprintf(stderr, "usage: snapshot_rules fill [STATUS] | check all|dontneed|munmap_remap|mremap|fork|"
                         "threads|twice|partial|children|claim_lock|claim_uffd | check fork_via _Fork|clone|vfork|posix_spawn|"
                         "system|fork_without_uffd | check core DIR\n");
    return 2;
  }
  const std::string s = argv[2];
  if (s == "all") {
  } else if (s == "dontneed") {
    scenario_dontneed();
  } else if (s == "munmap_remap") {
    scenario_munmap_remap();
  } else if (s == "mremap") {
    scenario_mremap();
  } else if (s == "fork") {
    scenario_fork();
  } else if (s == "fork_via" && argc > 3) {
    scenario_fork_via(argv[3]);
  } else if (s == "threads") {
    scenario_threads();
  } else if (s == "claim_lock") {
    scenario_claim_lock();
  } else if (s == "claim_uffd") {
    scenario_claim_uffd();
  } else if (s == "core" && argc > 3) {
    scenario_core(argv[3]);
  } else if (s == "twice") {
    scenario_twice();
  } else if (s == "children") {
    // Nothing the shim started (a remote restore's fetcher) is a child wait(2) can reap.
    const int reaped = waitpid(-1, nullptr, WNOHANG);
    std::printf("children: waitpid=%d%s\n", reaped, reaped < 0 && errno == ECHILD ? " ECHILD" : "");
  } else if (s == "partial") {
    scenario_partial();
    std::printf("check partial: failures=%d\n", failures);
    return failures ? 1 : 0;
  } else {
    std::fprintf(stderr, "unknown scenario %s\n", s.c_str());
    return 2;
  }
  Account a = check_all_regions();
  const std::string name = s == "fork_via" ? s + " " + argv[3] : s;
  std::printf("check %s: regions=%d pages=%zu recorded=%zu zeroed=%zu mismatches=%zu failures=%d\n", name.c_str(),
              kRegions, a.pages, a.recorded, a.zeroed, a.mismatches, failures);
  return a.mismatches || failures ? 1 : 0;
}
