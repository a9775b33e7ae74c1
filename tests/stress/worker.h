// One stress thread: its blocks of memory, the shadow of every page, its random choices, and
// what the watchdog may read about it while it runs.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/stress/operations.h"

namespace stress {

extern const size_t kPage;

struct Options {
  uint64_t seed = 1;
  int threads = 8;
  int steps = 300;                 // per thread
  uint32_t families = kAllFamilies;
  uint64_t only_ops = 0;           // --only: a bit per Op; 0 = every operation of the families
  size_t page_budget = 256;        // pages one thread may have mapped at once
  size_t max_blocks = 4;           // blocks one thread keeps at once
  // close_range(3, ~0U, 0) once at startup. kOldMemory: each thread starts with a block mapped
  // (and partly touched) before the close; kNewMemory: only memory mapped after it.
  enum class CloseRange { kNo, kOldMemory, kNewMemory } close_range = CloseRange::kNo;
  int watchdog_seconds = 30;       // a thread without progress this long is a hang
  bool watchdog_core = false;      // on a hang, abort (a core dump to inspect) instead of exiting 124
  // A region that outlives a record/restore: mapped first, filled once with a pattern derived from
  // the seed, never changed; found already holding it when the run is a restore (see persist.h).
  bool persist = false;
  std::string dir = "/tmp";        // where the threads' files live (O_TMPFILE)
};

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n ? size_t(next() % n) : 0; }
  bool chance(unsigned percent) { return below(100) < percent; }
};

struct PageState {
  uint64_t tag;   // 0: zeros
  uint8_t prot;   // PROT_NONE, PROT_READ or PROT_READ|PROT_WRITE
  uint8_t freed;  // MADV_FREE since the last write: reads as the tag or, once reclaimed, zeros
};

// A contiguous range the thread owns (no holes; it may span several VMAs).
struct Block {
  char* base = nullptr;
  std::vector<PageState> pages;
  // True only when the whole block is certainly inside one VMA, with or without the shim; the
  // operations the kernel allows on one VMA only (grow, DONTUNMAP) are chosen only then.
  bool one_vma = true;
  int vma_bound = 1;   // at most this many VMAs (bounds the process's map count)
  bool dirty = true;   // to be checked at the end of this step
  size_t bytes() const { return pages.size() * kPage; }
};

struct Counts {
  uint64_t ops[kOpCount] = {};
  uint64_t pages_written = 0;
  uint64_t pages_verified = 0;
};

// Counts that depend on timing or on where the kernel put things: printed, never compared.
struct Nondet {
  uint64_t grow_in_place_moved = 0;   // no room to grow in place: grown by moving instead
  uint64_t grow_maymove_moved = 0;
  uint64_t free_reclaimed = 0;        // MADV_FREE pages found reclaimed (zeros)
  uint64_t free_kept = 0;             // MADV_FREE pages still holding their data at the end
  uint64_t collapse_ok = 0;
  uint64_t collapse_refused = 0;
  uint64_t shared_zero_seen = 0;      // shared pages read as zeros (the owner had dropped them)
  uint64_t shared_torn_seen = 0;      // shared pages caught mid-drop
};

inline constexpr size_t kArenaPages = 16;
inline constexpr size_t kPreClosePages = 16;
inline constexpr size_t kFilePages = 32;  // [0,16): read back into memory; [16,32): written from lazy pages

// Only the thread's signal handler touches this (and the thread itself with the signal blocked).
struct HandlerState {
  char* arena = nullptr;
  uint64_t tags[kArenaPages] = {};
  uint64_t handled = 0;
  uint64_t mmaps = 0;
};

enum class RunState : int { kNotStarted, kRunning, kDone };

struct Worker {
  int id = 0;
  const Options* opt = nullptr;
  pthread_t thread{};
  Rng rng{0};
  std::vector<Block> blocks;
  Counts counts;
  Nondet nd;
  uint64_t tag_counter = 0;
  char* io_page = nullptr;     // a private (heap) page for pipe and file traffic
  int file_fd = -1;
  uint64_t file_tags[kFilePages] = {};
  size_t file_pages = 0;       // the file's length in pages as this thread wrote it
  HandlerState handler;
  char* own_stack = nullptr;   // lazystacks: the thread's stack, mapped by the program
  char* pre_close_block = nullptr;  // --close-range: mapped before the close (page 0 written, tag counter 0)
  size_t persist_first = 0;         // --persist: this thread's slice of the persistent region
  size_t own_stack_bytes = 0;

  // Read by the watchdog while the thread runs.
  std::atomic<int> state{int(RunState::kNotStarted)};
  std::atomic<int> tid{0};
  std::atomic<int> step{0};
  std::atomic<int> op{-1};
  std::atomic<const char*> doing{"starting"};
  std::atomic<uintptr_t> addr{0};
  std::atomic<uint64_t> progress_ns{0};
  std::atomic<int> child_pid{0};
};

// Failures, for the whole process (children report through their exit status).
struct Problems {
  std::atomic<long> wrong_pages{0};
  std::atomic<long> failed_calls{0};
  std::atomic<long> child_failures{0};
  std::atomic<long> file_errors{0};
};
extern Problems g_problems;
extern Worker* g_workers;
extern int g_worker_count;

void run_worker(Worker& w);
uint64_t now_ns();
// A line on stderr (at most a few hundred are printed; the counts are always complete).
void report(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace stress
