// The stress thread: each step picks an operation (deterministically from the thread's seed and
// its own shadow), applies it to the thread's own memory, updates the shadow, and checks every
// page the step changed. Nothing here touches another thread's blocks, so the shadow is exact
// however the threads interleave.
#include "tests/stress/worker.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/stress/child_checks.h"
#include "tests/stress/page_pattern.h"
#include "tests/stress/persist.h"
#include "tests/stress/shared_regions.h"

extern char** environ;

namespace stress {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));
Problems g_problems;
Worker* g_workers = nullptr;
int g_worker_count = 0;

namespace {

constexpr int kMaxVmaBound = 9;
// Blocks of more than 64 pages are shattered into a VMA per page (move_multi_vma) only in runs of
// at most this many threads: 16 x the page budget stays far below vm.max_map_count.
constexpr int kMaxShatterThreads = 16;
#ifndef MADV_COLLAPSE
constexpr int MADV_COLLAPSE = 25;  // Linux 6.1; older libc headers lack it
#endif
constexpr int kRw = PROT_READ | PROT_WRITE;
std::atomic<int> g_report_lines{0};
constexpr int kMaxReportLines = 300;

}  // namespace

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void report(const char* fmt, ...) {
  int n = g_report_lines.fetch_add(1);
  if (n > kMaxReportLines) return;
  char line[768];
  int len;
  if (n == kMaxReportLines) {
    len = snprintf(line, sizeof line, "mapping_stress: more problems; not printing them\n");
  } else {
    va_list ap;
    va_start(ap, fmt);
    len = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (len < 0) return;
    if (size_t(len) > sizeof line - 2) len = int(sizeof line - 2);
    line[len++] = '\n';
  }
  ssize_t ignored = write(2, line, size_t(len));
  (void)ignored;
}

namespace {

class Thread {
 public:
  explicit Thread(Worker& w) : w_(w), rng_(w.rng) {}

  void run();

 private:
  // --- bookkeeping -------------------------------------------------------------------------
  void doing(const char* what, const void* at = nullptr) {
    w_.doing.store(what, std::memory_order_relaxed);
    w_.addr.store(reinterpret_cast<uintptr_t>(at), std::memory_order_relaxed);
  }
  uint64_t new_tag() { return make_tag(uint32_t(w_.id), ++w_.tag_counter); }
  size_t mapped_pages() const {
    size_t n = 0;
    for (const auto& b : w_.blocks) n += b.pages.size();
    return n;
  }
  size_t room() const {
    size_t used = mapped_pages();
    return w_.opt->page_budget > used ? w_.opt->page_budget - used : 0;
  }
  bool has(uint32_t family) const { return (w_.opt->families & family) != 0; }
  size_t pick_block() { return rng_.below(w_.blocks.size()); }
  size_t pick_size(size_t limit);
  struct Range {
    size_t first, count;
  };
  Range pick_range(const Block& b, size_t max_count = SIZE_MAX);
  Range pick_partial(const Block& b);  // never the whole block (needs >= 2 pages)
  Block& add_block(char* base, std::vector<PageState> pages, bool one_vma, int vma_bound);
  void failed(const char* call, int err, const Block* b);
  void abandon(size_t idx, void* extra = nullptr, size_t extra_bytes = 0);
  char* reserve(size_t pages);
  void set_zero(Block& b, size_t first, size_t count);
  bool protect(Block& b, size_t first, size_t count, int prot);

  // --- checking ----------------------------------------------------------------------------
  void write_page(Block& b, size_t i);
  void verify_page(Block& b, size_t i);
  void verify_block(Block& b);
  void verify_dirty();
  void verify_persistent_slice();

  // --- operations (each returns the operation it performed) --------------------------------
  bool enabled(Op op) const;
  Op choose();
  Op perform(Op op);
  Op op_write();
  Op op_read();
  Op op_map(bool reserve_only);
  Op op_unmap_whole();
  Op op_unmap_head();
  Op op_unmap_tail();
  Op op_unmap_middle();
  Op op_fixed_part();
  Op op_fixed_whole();
  Op op_protect();
  Op op_open();
  Op op_dontneed();
  Op op_free(bool pageout);
  Op op_pageout();
  Op op_hugepage();
  Op op_collapse();
  Op op_move();
  Op op_move_part();
  Op op_grow_in_place();
  Op op_grow_move();
  Op op_grow_maymove();
  Op op_shrink();
  Op op_dontunmap();
  Op op_move_multi();
  Op op_read_pipe();
  Op op_read_file();
  Op op_write_from_lazy();
  Op op_child(Op which);
  Op op_signal();
  Op op_shared_drop();
  Op op_shared_move_page();
  Op op_shared_read();

  bool ensure_file();
  bool make_readable_writable(Block& b, size_t first, size_t count);
  void check_file();
  void finish();

  Worker& w_;
  Rng& rng_;
  int step_ = 0;
};

// --- bookkeeping -----------------------------------------------------------------------------

size_t Thread::pick_size(size_t limit) {
  static const size_t kSizes[] = {1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 128, 255, 256, 512};
  size_t n = kSizes[rng_.below(sizeof kSizes / sizeof kSizes[0])];
  return std::max<size_t>(1, std::min(n, limit));
}

Thread::Range Thread::pick_range(const Block& b, size_t max_count) {
  size_t pages = b.pages.size();
  if (rng_.chance(20) && pages <= max_count) return {0, pages};
  size_t first = rng_.below(pages);
  size_t count = 1 + rng_.below(std::min(pages - first, max_count));
  return {first, count};
}

Thread::Range Thread::pick_partial(const Block& b) {
  size_t pages = b.pages.size();
  size_t first = rng_.below(pages);
  size_t count = 1 + rng_.below(pages - first);
  if (first == 0 && count == pages) count = pages - 1;
  return {first, count};
}

Block& Thread::add_block(char* base, std::vector<PageState> pages, bool one_vma, int vma_bound) {
  Block b;
  b.base = base;
  b.pages = std::move(pages);
  b.one_vma = one_vma;
  b.vma_bound = vma_bound;
  b.dirty = true;
  w_.blocks.push_back(std::move(b));
  return w_.blocks.back();
}

void Thread::failed(const char* call, int err, const Block* b) {
  g_problems.failed_calls.fetch_add(1);
  report("failed call: thread %d step %d op %s: %s: %s (block %p, %zu pages, %s)", w_.id, step_,
         op_info(Op(w_.op.load())).name, call, strerror(err), b ? static_cast<void*>(b->base) : nullptr,
         b ? b->pages.size() : 0, b ? (b->one_vma ? "one VMA" : "several VMAs") : "-");
}

// After a failed call the block's state is unknown: give its range (and a destination reserved
// for it) back and carry on without it.
void Thread::abandon(size_t idx, void* extra, size_t extra_bytes) {
  Block& b = w_.blocks[idx];
  munmap(b.base, b.bytes());
  if (extra) munmap(extra, extra_bytes);
  w_.blocks.erase(w_.blocks.begin() + long(idx));
}

char* Thread::reserve(size_t pages) {
  doing("mmap reservation");
  void* p = mmap(nullptr, pages * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    failed("mmap(PROT_NONE) for a destination", errno, nullptr);
    return nullptr;
  }
  return static_cast<char*>(p);
}

void Thread::set_zero(Block& b, size_t first, size_t count) {
  for (size_t i = first; i < first + count; i++) {
    b.pages[i].tag = 0;
    b.pages[i].freed = 0;
  }
  b.dirty = true;
}

bool Thread::protect(Block& b, size_t first, size_t count, int prot) {
  bool whole = first == 0 && count == b.pages.size();
  if (!whole && b.vma_bound >= kMaxVmaBound) {
    first = 0;
    count = b.pages.size();
    whole = true;
  }
  doing("mprotect", b.base + first * kPage);
  if (mprotect(b.base + first * kPage, count * kPage, prot) != 0) {
    failed("mprotect", errno, &b);
    return false;
  }
  for (size_t i = first; i < first + count; i++) b.pages[i].prot = uint8_t(prot);
  if (!whole) {
    b.one_vma = false;
    b.vma_bound += 2;
  }
  b.dirty = true;
  return true;
}

// --- checking --------------------------------------------------------------------------------

void Thread::write_page(Block& b, size_t i) {
  PageState& p = b.pages[i];
  if (p.prot != kRw) return;
  uint64_t tag = new_tag();
  char* at = b.base + i * kPage;
  doing("writing a page", at);
  fill_page(at, kPage, tag);
  p.tag = tag;
  p.freed = 0;
  w_.counts.pages_written++;
  b.dirty = true;
}

void Thread::verify_page(Block& b, size_t i) {
  PageState& p = b.pages[i];
  const char* at = b.base + i * kPage;
  doing("checking a page", at);
  PageLook look = check_page(at, kPage, p.tag, p.freed);
  // A reclaim of a freed page may land between the reads of one check: look once more.
  if (!look.ok && p.freed) look = check_page(at, kPage, p.tag, true);
  w_.counts.pages_verified++;
  if (look.ok) {
    if (p.freed && look.word0 == 0) {
      p.tag = 0;
      p.freed = 0;
      w_.nd.free_reclaimed++;
    }
    return;
  }
  g_problems.wrong_pages.fetch_add(1);
  char expected[96];
  if (p.tag == 0) {
    snprintf(expected, sizeof expected, "zeros");
  } else {
    snprintf(expected, sizeof expected, "tag %#llx (thread %ld #%llu)%s", (unsigned long long)p.tag, tag_thread(p.tag),
             (unsigned long long)tag_counter(p.tag), p.freed ? " or zeros (freed)" : "");
  }
  report("wrong page: thread %d step %d after %s: %p (page %zu of a %zu-page block at %p, %s, prot %d): expected %s, "
         "found word0=%#llx (thread %ld #%llu), first wrong word %zu",
         w_.id, step_, op_info(Op(w_.op.load())).name, static_cast<const void*>(at), i, b.pages.size(),
         static_cast<void*>(b.base), b.one_vma ? "one VMA" : "several VMAs", p.prot, expected,
         (unsigned long long)look.word0, tag_thread(look.word0), (unsigned long long)tag_counter(look.word0),
         look.bad_word);
  // Drop the page so the shadow holds again (it must read zeros now) and later checks go on.
  madvise(const_cast<char*>(at), kPage, MADV_DONTNEED);
  p.tag = 0;
  p.freed = 0;
}

void Thread::verify_block(Block& b) {
  for (size_t i = 0; i < b.pages.size(); i++) {
    if (b.pages[i].prot & PROT_READ) verify_page(b, i);
  }
  b.dirty = false;
}

void Thread::verify_dirty() {
  for (auto& b : w_.blocks)
    if (b.dirty) verify_block(b);
}

void Thread::verify_persistent_slice() {
  doing("checking its slice of the persistent region", g_persist.base + w_.persist_first * kPage);
  char who[64];
  snprintf(who, sizeof who, "thread %d step %d", w_.id, step_);
  long bad = check_persistent_pages(w_.persist_first, kPersistPagesPerThread, who);
  g_problems.wrong_pages.fetch_add(bad);
  w_.counts.pages_verified += kPersistPagesPerThread;
}

// --- choosing --------------------------------------------------------------------------------

bool Thread::enabled(Op op) const {
  const uint64_t only = w_.opt->only_ops;
  return has(op_info(op).family) && (only == 0 || (only >> int(op)) & 1);
}

Op Thread::choose() {
  uint32_t total = 0;
  for (int i = 0; i < kOpCount; i++) {
    if (enabled(Op(i))) total += op_info(Op(i)).weight;
  }
  uint32_t r = uint32_t(rng_.below(total));
  for (int i = 0; i < kOpCount; i++) {
    const OpInfo& info = op_info(Op(i));
    if (!enabled(Op(i))) continue;
    if (r < info.weight) return Op(i);
    r -= info.weight;
  }
  return Op::kWrite;
}

Op Thread::perform(Op op) {
  const bool needs_block = op != Op::kSignal && op != Op::kSystem && op != Op::kSpawn && op != Op::kSharedDrop &&
                           op != Op::kSharedMovePage && op != Op::kSharedRead;
  if (w_.blocks.empty() && needs_block) return op_map(false);
  switch (op) {
    case Op::kWrite: return op_write();
    case Op::kRead: return op_read();
    case Op::kMap: return op_map(false);
    case Op::kReserve: return op_map(true);
    case Op::kUnmapWhole: return op_unmap_whole();
    case Op::kUnmapHead: return op_unmap_head();
    case Op::kUnmapTail: return op_unmap_tail();
    case Op::kUnmapMiddle: return op_unmap_middle();
    case Op::kOverlayPart: return op_fixed_part();
    case Op::kOverlayWhole: return op_fixed_whole();
    case Op::kProtect: return op_protect();
    case Op::kOpen: return op_open();
    case Op::kDontneed: return op_dontneed();
    case Op::kFree: return op_free(false);
    case Op::kFreePageout: return op_free(true);
    case Op::kPageout: return op_pageout();
    case Op::kHugepage: return op_hugepage();
    case Op::kCollapse: return op_collapse();
    case Op::kMove: return op_move();
    case Op::kMovePart: return op_move_part();
    case Op::kGrowInPlace: return op_grow_in_place();
    case Op::kGrowMove: return op_grow_move();
    case Op::kGrowMaymove: return op_grow_maymove();
    case Op::kShrink: return op_shrink();
    case Op::kDontunmap: return op_dontunmap();
    case Op::kMoveMulti: return op_move_multi();
    case Op::kReadPipe: return op_read_pipe();
    case Op::kReadFile: return op_read_file();
    case Op::kWriteFromLazy: return op_write_from_lazy();
    case Op::kFork:
    case Op::kVfork:
    case Op::kSpawn:
    case Op::kSystem:
    case Op::kUnderscoreFork:
    case Op::kCloneNoVm: return op_child(op);
    case Op::kSignal: return op_signal();
    case Op::kSharedDrop: return op_shared_drop();
    case Op::kSharedMovePage: return op_shared_move_page();
    case Op::kSharedRead: return op_shared_read();
    case Op::kCount: break;
  }
  return op_write();
}

// --- touch -----------------------------------------------------------------------------------

Op Thread::op_write() {
  Block& b = w_.blocks[pick_block()];
  int n = 1 + int(rng_.below(8));
  for (int k = 0; k < n; k++) write_page(b, rng_.below(b.pages.size()));
  return Op::kWrite;
}

Op Thread::op_read() {
  w_.blocks[pick_block()].dirty = true;
  return Op::kRead;
}

// --- map -------------------------------------------------------------------------------------

Op Thread::op_map(bool reserve_only) {
  if (!w_.blocks.empty() && (w_.blocks.size() >= w_.opt->max_blocks || room() == 0)) return op_unmap_whole();
  size_t n = pick_size(std::max<size_t>(room(), 1));
  int prot = reserve_only ? PROT_NONE : kRw;
  doing(reserve_only ? "mmap(PROT_NONE)" : "mmap");
  void* p = mmap(nullptr, n * kPage, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    failed("mmap", errno, nullptr);
    return reserve_only ? Op::kReserve : Op::kMap;
  }
  add_block(static_cast<char*>(p), std::vector<PageState>(n, PageState{0, uint8_t(prot), 0}), true, 1);
  return reserve_only ? Op::kReserve : Op::kMap;
}

Op Thread::op_unmap_whole() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  doing("munmap", b.base);
  if (munmap(b.base, b.bytes()) != 0) failed("munmap", errno, &b);
  w_.blocks.erase(w_.blocks.begin() + long(idx));
  return Op::kUnmapWhole;
}

Op Thread::op_unmap_head() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (b.pages.size() < 2) return op_unmap_whole();
  size_t n = 1 + rng_.below(b.pages.size() - 1);
  doing("munmap head", b.base);
  if (munmap(b.base, n * kPage) != 0) {
    failed("munmap head", errno, &b);
    abandon(idx);
    return Op::kUnmapHead;
  }
  b.base += n * kPage;
  b.pages.erase(b.pages.begin(), b.pages.begin() + long(n));
  b.dirty = true;
  return Op::kUnmapHead;
}

Op Thread::op_unmap_tail() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (b.pages.size() < 2) return op_unmap_whole();
  size_t n = 1 + rng_.below(b.pages.size() - 1);
  size_t keep = b.pages.size() - n;
  doing("munmap tail", b.base + keep * kPage);
  if (munmap(b.base + keep * kPage, n * kPage) != 0) {
    failed("munmap tail", errno, &b);
    abandon(idx);
    return Op::kUnmapTail;
  }
  b.pages.resize(keep);
  b.dirty = true;
  return Op::kUnmapTail;
}

Op Thread::op_unmap_middle() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (b.pages.size() < 3 || w_.blocks.size() >= w_.opt->max_blocks + 2) return op_unmap_head();
  size_t first = 1 + rng_.below(b.pages.size() - 2);
  size_t n = 1 + rng_.below(b.pages.size() - 1 - first);
  doing("munmap middle", b.base + first * kPage);
  if (munmap(b.base + first * kPage, n * kPage) != 0) {
    failed("munmap middle", errno, &b);
    abandon(idx);
    return Op::kUnmapMiddle;
  }
  // The hole may be taken by another thread's mapping at once: the two sides are two blocks now.
  std::vector<PageState> right(b.pages.begin() + long(first + n), b.pages.end());
  char* right_base = b.base + (first + n) * kPage;
  b.pages.resize(first);
  b.dirty = true;
  bool one = b.one_vma;
  int bound = b.vma_bound;
  add_block(right_base, std::move(right), one, bound);
  return Op::kUnmapMiddle;
}

Op Thread::op_fixed_part() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (b.pages.size() < 2 || b.vma_bound >= kMaxVmaBound) return op_fixed_whole();
  Range r = pick_partial(b);
  int prot = rng_.chance(25) ? PROT_NONE : kRw;
  char* at = b.base + r.first * kPage;
  doing("mmap(MAP_FIXED) over part", at);
  void* p = mmap(at, r.count * kPage, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p != at) {
    failed("mmap(MAP_FIXED) over part of a block", errno, &b);
    abandon(idx);
    return Op::kOverlayPart;
  }
  set_zero(b, r.first, r.count);
  for (size_t i = r.first; i < r.first + r.count; i++) b.pages[i].prot = uint8_t(prot);
  b.one_vma = false;
  b.vma_bound += 2;
  return Op::kOverlayPart;
}

Op Thread::op_fixed_whole() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  int prot = rng_.chance(20) ? PROT_NONE : kRw;
  doing("mmap(MAP_FIXED) over a block", b.base);
  void* p = mmap(b.base, b.bytes(), prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p != b.base) {
    failed("mmap(MAP_FIXED) over a whole block", errno, &b);
    abandon(idx);
    return Op::kOverlayWhole;
  }
  set_zero(b, 0, b.pages.size());
  for (auto& pg : b.pages) pg.prot = uint8_t(prot);
  b.one_vma = true;
  b.vma_bound = 1;
  return Op::kOverlayWhole;
}

// --- prot ------------------------------------------------------------------------------------

Op Thread::op_protect() {
  Block& b = w_.blocks[pick_block()];
  Range r = pick_range(b);
  static const int kProts[] = {PROT_READ, PROT_NONE, kRw};
  protect(b, r.first, r.count, kProts[rng_.below(3)]);
  return Op::kProtect;
}

Op Thread::op_open() {
  // A reservation (or any PROT_NONE part) is opened: its pages must read zeros, or what they held.
  size_t start = pick_block();
  for (size_t k = 0; k < w_.blocks.size(); k++) {
    Block& b = w_.blocks[(start + k) % w_.blocks.size()];
    for (size_t i = 0; i < b.pages.size(); i++) {
      if (b.pages[i].prot != PROT_NONE) continue;
      size_t count = rng_.chance(40) ? b.pages.size() - i : 1 + rng_.below(b.pages.size() - i);
      if (i == 0 && rng_.chance(50)) count = b.pages.size();
      protect(b, i, count, kRw);
      // And use it at once: the first touch of an opened reservation is a fault on a registered range.
      write_page(b, i + rng_.below(count));
      return Op::kOpen;
    }
  }
  Block& b = w_.blocks[start];
  Range r = pick_range(b);
  protect(b, r.first, r.count, kRw);
  return Op::kOpen;
}

// --- advise ----------------------------------------------------------------------------------

Op Thread::op_dontneed() {
  Block& b = w_.blocks[pick_block()];
  Range r = pick_range(b);
  char* at = b.base + r.first * kPage;
  doing("madvise(DONTNEED)", at);
  if (madvise(at, r.count * kPage, MADV_DONTNEED) != 0) failed("madvise(DONTNEED)", errno, &b);
  set_zero(b, r.first, r.count);
  return Op::kDontneed;
}

Op Thread::op_free(bool pageout) {
  Block& b = w_.blocks[pick_block()];
  Range r = pick_range(b);
  char* at = b.base + r.first * kPage;
  doing("madvise(FREE)", at);
  if (madvise(at, r.count * kPage, MADV_FREE) != 0) failed("madvise(FREE)", errno, &b);
  for (size_t i = r.first; i < r.first + r.count; i++)
    if (b.pages[i].tag) b.pages[i].freed = 1;
  if (pageout) {
    // Forces the reclaim where the kernel can (pages shared with a fork child stay): freed pages
    // then read zeros, and under the shim fault again.
    doing("madvise(PAGEOUT)", at);
    if (madvise(at, r.count * kPage, MADV_PAGEOUT) != 0) failed("madvise(PAGEOUT)", errno, &b);
  }
  b.dirty = true;
  return pageout ? Op::kFreePageout : Op::kFree;
}

Op Thread::op_pageout() {
  Block& b = w_.blocks[pick_block()];
  Range r = pick_range(b);
  char* at = b.base + r.first * kPage;
  doing("madvise(PAGEOUT)", at);
  if (madvise(at, r.count * kPage, MADV_PAGEOUT) != 0) failed("madvise(PAGEOUT)", errno, &b);
  b.dirty = true;
  return Op::kPageout;
}

Op Thread::op_hugepage() {
  Block& b = w_.blocks[pick_block()];
  doing("madvise(HUGEPAGE)", b.base);
  if (madvise(b.base, b.bytes(), MADV_HUGEPAGE) != 0) failed("madvise(HUGEPAGE)", errno, &b);
  int n = 1 + int(rng_.below(4));
  for (int k = 0; k < n; k++) write_page(b, rng_.below(b.pages.size()));
  return Op::kHugepage;
}

Op Thread::op_collapse() {
  Block& b = w_.blocks[pick_block()];
  doing("madvise(COLLAPSE)", b.base);
  // Refused for many reasons (alignment, a missing page, memory): only the contents matter.
  if (madvise(b.base, b.bytes(), MADV_COLLAPSE) == 0) {
    w_.nd.collapse_ok++;
  } else {
    w_.nd.collapse_refused++;
  }
  b.dirty = true;
  return Op::kCollapse;
}

// --- remap -----------------------------------------------------------------------------------

Op Thread::op_move() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (!b.one_vma && !has(kFamMultiVma)) return op_dontneed();
  char* dst = reserve(b.pages.size());
  if (!dst) return Op::kMove;
  doing("mremap(MAYMOVE|FIXED)", b.base);
  void* p = mremap(b.base, b.bytes(), b.bytes(), MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  if (p != dst) {
    failed(b.one_vma ? "mremap move" : "mremap move of a block spanning several VMAs", errno, &b);
    abandon(idx, dst, b.bytes());
    return Op::kMove;
  }
  b.base = dst;
  b.dirty = true;
  return Op::kMove;
}

Op Thread::op_move_part() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (b.pages.size() < 2) return op_move();
  if (!b.one_vma && !has(kFamMultiVma)) return op_dontneed();
  if (w_.blocks.size() > w_.opt->max_blocks) return op_move();
  Range r = pick_partial(b);
  char* dst = reserve(r.count);
  if (!dst) return Op::kMovePart;
  char* from = b.base + r.first * kPage;
  doing("mremap part (MAYMOVE|FIXED)", from);
  void* p = mremap(from, r.count * kPage, r.count * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  if (p != dst) {
    failed("mremap move of part of a block", errno, &b);
    abandon(idx, dst, r.count * kPage);
    return Op::kMovePart;
  }
  std::vector<PageState> moved(b.pages.begin() + long(r.first), b.pages.begin() + long(r.first + r.count));
  std::vector<PageState> right(b.pages.begin() + long(r.first + r.count), b.pages.end());
  char* right_base = b.base + (r.first + r.count) * kPage;
  bool one = b.one_vma;
  int bound = b.vma_bound;
  if (r.first == 0) {
    // Nothing left of it on the left: the block becomes its right side.
    b.base = right_base;
    b.pages = std::move(right);
    b.dirty = true;
  } else {
    b.pages.resize(r.first);
    b.dirty = true;
    if (!right.empty()) add_block(right_base, std::move(right), one, bound);
  }
  add_block(dst, std::move(moved), one, bound);
  return Op::kMovePart;
}

Op Thread::op_grow_in_place() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (!b.one_vma) return op_shrink();
  if (room() == 0) return op_shrink();
  size_t more = 1 + rng_.below(std::min<size_t>(32, room()));
  size_t old_bytes = b.bytes(), new_bytes = old_bytes + more * kPage;
  doing("mremap grow in place", b.base);
  void* p = mremap(b.base, old_bytes, new_bytes, 0);
  if (p == MAP_FAILED && errno == ENOMEM) {
    // Another mapping follows the block (another thread's, or a merged neighbour): grow by moving.
    w_.nd.grow_in_place_moved++;
    doing("mremap grow (MAYMOVE) after in place failed", b.base);
    p = mremap(b.base, old_bytes, new_bytes, MREMAP_MAYMOVE);
  }
  if (p == MAP_FAILED) {
    failed("mremap grow", errno, &b);
    abandon(idx);
    return Op::kGrowInPlace;
  }
  uint8_t prot = b.pages.back().prot;
  b.base = static_cast<char*>(p);
  b.pages.resize(b.pages.size() + more, PageState{0, prot, 0});
  b.dirty = true;
  return Op::kGrowInPlace;
}

Op Thread::op_grow_move() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (!b.one_vma || room() == 0) return op_shrink();
  size_t more = 1 + rng_.below(std::min<size_t>(64, room()));
  size_t old_bytes = b.bytes(), new_bytes = old_bytes + more * kPage;
  char* dst = reserve(b.pages.size() + more);
  if (!dst) return Op::kGrowMove;
  doing("mremap grow (MAYMOVE|FIXED)", b.base);
  void* p = mremap(b.base, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  if (p != dst) {
    failed("mremap grow that moves", errno, &b);
    abandon(idx, dst, new_bytes);
    return Op::kGrowMove;
  }
  uint8_t prot = b.pages.back().prot;
  b.base = dst;
  b.pages.resize(b.pages.size() + more, PageState{0, prot, 0});
  b.dirty = true;
  return Op::kGrowMove;
}

Op Thread::op_grow_maymove() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (!b.one_vma || room() == 0) return op_shrink();
  size_t more = 1 + rng_.below(std::min<size_t>(128, room()));
  size_t old_bytes = b.bytes(), new_bytes = old_bytes + more * kPage;
  doing("mremap grow (MAYMOVE)", b.base);
  void* p = mremap(b.base, old_bytes, new_bytes, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) {
    failed("mremap grow (MAYMOVE)", errno, &b);
    abandon(idx);
    return Op::kGrowMaymove;
  }
  if (p != b.base) w_.nd.grow_maymove_moved++;
  uint8_t prot = b.pages.back().prot;
  b.base = static_cast<char*>(p);
  b.pages.resize(b.pages.size() + more, PageState{0, prot, 0});
  b.dirty = true;
  return Op::kGrowMaymove;
}

Op Thread::op_shrink() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (b.pages.size() < 2) return op_dontneed();
  size_t keep = 1 + rng_.below(b.pages.size() - 1);
  doing("mremap shrink", b.base);
  void* p = mremap(b.base, b.bytes(), keep * kPage, 0);
  if (p != b.base) {
    failed("mremap shrink", errno, &b);
    abandon(idx);
    return Op::kShrink;
  }
  b.pages.resize(keep);
  b.dirty = true;
  return Op::kShrink;
}

Op Thread::op_dontunmap() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (!b.one_vma) return op_dontneed();
  bool keep_source = w_.blocks.size() < w_.opt->max_blocks && room() >= b.pages.size();
  bool fixed = rng_.chance(50);
  char* dst = nullptr;
  if (fixed && !(dst = reserve(b.pages.size()))) return Op::kDontunmap;
  int flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP | (fixed ? MREMAP_FIXED : 0);
  doing(fixed ? "mremap(DONTUNMAP|FIXED)" : "mremap(DONTUNMAP)", b.base);
  void* p = mremap(b.base, b.bytes(), b.bytes(), flags, dst);
  if (p == MAP_FAILED || (fixed && p != dst)) {
    failed("mremap(DONTUNMAP)", errno, &b);
    abandon(idx, dst, dst ? b.bytes() : 0);
    return Op::kDontunmap;
  }
  // The pages went with the move; the source stays mapped (same protection) and reads zeros.
  std::vector<PageState> moved = b.pages;
  set_zero(b, 0, b.pages.size());
  char* source = b.base;
  size_t source_bytes = b.bytes();
  if (!keep_source) {
    doing("munmap DONTUNMAP source", source);
    verify_block(b);  // the emptied source reads zeros before it goes
    if (munmap(source, source_bytes) != 0) failed("munmap", errno, &b);
    w_.blocks.erase(w_.blocks.begin() + long(idx));
  }
  add_block(static_cast<char*>(p), std::move(moved), true, 1);
  return Op::kDontunmap;
}

Op Thread::op_move_multi() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  if (b.pages.size() < 2) return op_move();
  if (b.pages.size() > 16 && w_.opt->threads <= kMaxShatterThreads && rng_.chance(60)) {
    // Shatter it: every other page gets another protection, so it is as many VMAs as pages, more
    // than the shim learns at once (64). Its bound stays true (one VMA a page at most); the
    // thread count bounds the process's map count (page budget x threads).
    doing("mprotect every other page", b.base);
    for (size_t i = 1; i < b.pages.size(); i += 2) {
      int prot = b.pages[i].prot == kRw ? PROT_READ : kRw;
      if (mprotect(b.base + i * kPage, kPage, prot) != 0) {
        failed("mprotect of one page", errno, &b);
        return Op::kMoveMulti;
      }
      b.pages[i].prot = uint8_t(prot);
    }
    b.one_vma = false;
    b.vma_bound = std::max(b.vma_bound, int(b.pages.size()));
    b.dirty = true;
  } else if (b.one_vma) {
    // Split it: a part of it gets another protection, so it is two or three VMAs.
    Range r = pick_partial(b);
    int prot = b.pages[r.first].prot == kRw ? PROT_READ : kRw;
    if (!protect(b, r.first, r.count, prot)) return Op::kMoveMulti;
  }
  char* dst = reserve(b.pages.size());
  if (!dst) return Op::kMoveMulti;
  doing("mremap move of several VMAs (MAYMOVE|FIXED)", b.base);
  void* p = mremap(b.base, b.bytes(), b.bytes(), MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  if (p != dst) {
    failed("mremap move of a block spanning several VMAs", errno, &b);
    abandon(idx, dst, b.bytes());
    return Op::kMoveMulti;
  }
  b.base = dst;
  b.dirty = true;
  return Op::kMoveMulti;
}

// --- io --------------------------------------------------------------------------------------

bool Thread::make_readable_writable(Block& b, size_t first, size_t count) {
  for (size_t i = first; i < first + count; i++) {
    if (b.pages[i].prot != kRw) return protect(b, first, count, kRw);
  }
  return true;
}

bool Thread::ensure_file() {
  if (w_.file_fd >= 0) return true;
  doing("open(O_TMPFILE)");
  int fd = open(w_.opt->dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    failed("open(O_TMPFILE)", errno, nullptr);
    return false;
  }
  w_.file_fd = fd;
  return true;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

bool read_all(int fd, char* p, size_t n) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

bool pread_all(int fd, char* p, size_t n, off_t off) {
  while (n) {
    ssize_t r = pread(fd, p, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
    off += r;
  }
  return true;
}

bool pwrite_all(int fd, const char* p, size_t n, off_t off) {
  while (n) {
    ssize_t r = pwrite(fd, p, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
    off += r;
  }
  return true;
}

Op Thread::op_read_pipe() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  Range r = pick_range(b, 16);  // a pipe holds 16 pages: the writer never blocks
  if (!make_readable_writable(b, r.first, r.count)) return Op::kReadPipe;
  char* at = b.base + r.first * kPage;
  // Drop the pages first, so read(2) itself makes the first touch (a fault in kernel mode).
  doing("madvise(DONTNEED) before read(2)", at);
  if (madvise(at, r.count * kPage, MADV_DONTNEED) != 0) failed("madvise(DONTNEED)", errno, &b);
  set_zero(b, r.first, r.count);
  int fds[2];
  doing("pipe2");
  if (pipe2(fds, O_CLOEXEC) != 0) {
    failed("pipe2", errno, &b);
    return Op::kReadPipe;
  }
  std::vector<uint64_t> tags(r.count);
  bool ok = true;
  for (size_t k = 0; k < r.count && ok; k++) {
    tags[k] = new_tag();
    fill_page(w_.io_page, kPage, tags[k]);
    doing("write(2) to a pipe");
    ok = write_all(fds[1], w_.io_page, kPage);
  }
  if (!ok) failed("write(2) to a pipe", errno, &b);
  doing("read(2) from a pipe into dropped pages", at);
  if (ok && !read_all(fds[0], at, r.count * kPage)) {
    failed("read(2) from a pipe into dropped pages", errno, &b);
    ok = false;
  }
  close(fds[0]);
  close(fds[1]);
  if (!ok) {
    abandon(idx);
    return Op::kReadPipe;
  }
  for (size_t k = 0; k < r.count; k++) b.pages[r.first + k] = PageState{tags[k], uint8_t(kRw), 0};
  w_.counts.pages_written += r.count;
  return Op::kReadPipe;
}

Op Thread::op_read_file() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  Range r = pick_range(b, 16);
  if (!ensure_file()) return Op::kReadFile;
  if (!make_readable_writable(b, r.first, r.count)) return Op::kReadFile;
  for (size_t k = 0; k < r.count; k++) {
    uint64_t tag = new_tag();
    fill_page(w_.io_page, kPage, tag);
    doing("pwrite(2) to the thread's file");
    if (!pwrite_all(w_.file_fd, w_.io_page, kPage, off_t(k * kPage))) {
      failed("pwrite(2) to the thread's file", errno, &b);
      return Op::kReadFile;
    }
    w_.file_tags[k] = tag;
  }
  w_.file_pages = std::max(w_.file_pages, r.count);
  char* at = b.base + r.first * kPage;
  doing("madvise(DONTNEED) before pread(2)", at);
  if (madvise(at, r.count * kPage, MADV_DONTNEED) != 0) failed("madvise(DONTNEED)", errno, &b);
  set_zero(b, r.first, r.count);
  doing("pread(2) from a file into dropped pages", at);
  if (!pread_all(w_.file_fd, at, r.count * kPage, 0)) {
    failed("pread(2) from a file into dropped pages", errno, &b);
    abandon(idx);
    return Op::kReadFile;
  }
  for (size_t k = 0; k < r.count; k++) b.pages[r.first + k] = PageState{w_.file_tags[k], uint8_t(kRw), 0};
  w_.counts.pages_written += r.count;
  check_file();
  return Op::kReadFile;
}

Op Thread::op_write_from_lazy() {
  size_t idx = pick_block();
  Block& b = w_.blocks[idx];
  Range r = pick_range(b, 16);
  bool to_file = rng_.chance(50);
  if (to_file && !ensure_file()) return Op::kWriteFromLazy;
  if (!make_readable_writable(b, r.first, r.count)) return Op::kWriteFromLazy;
  char* at = b.base + r.first * kPage;
  // The kernel reads pages nobody touched since the drop: they must go out as zeros.
  doing("madvise(DONTNEED) before write(2)", at);
  if (madvise(at, r.count * kPage, MADV_DONTNEED) != 0) failed("madvise(DONTNEED)", errno, &b);
  set_zero(b, r.first, r.count);
  bool ok;
  int fds[2] = {-1, -1};
  if (to_file) {
    doing("pwrite(2) from dropped pages", at);
    ok = pwrite_all(w_.file_fd, at, r.count * kPage, off_t(16 * kPage));
    if (ok) {
      for (size_t k = 0; k < r.count; k++) w_.file_tags[16 + k] = 0;
      w_.file_pages = std::max(w_.file_pages, 16 + r.count);
    }
  } else {
    doing("pipe2");
    if (pipe2(fds, O_CLOEXEC) != 0) {
      failed("pipe2", errno, &b);
      return Op::kWriteFromLazy;
    }
    doing("write(2) from dropped pages", at);
    ok = write_all(fds[1], at, r.count * kPage);
  }
  if (!ok) failed(to_file ? "pwrite(2) from dropped pages" : "write(2) from dropped pages", errno, &b);
  for (size_t k = 0; ok && k < r.count; k++) {
    doing("reading back what write(2) sent");
    bool got = to_file ? pread_all(w_.file_fd, w_.io_page, kPage, off_t((16 + k) * kPage))
                       : read_all(fds[0], w_.io_page, kPage);
    if (!got) {
      failed("reading back what write(2) sent", errno, &b);
      break;
    }
    if (!page_is_zero(w_.io_page, kPage)) {
      g_problems.wrong_pages.fetch_add(1);
      report("wrong page: thread %d step %d: %s of a dropped page (%p) sent non-zero data (word0=%#llx)", w_.id,
             step_, to_file ? "pwrite(2)" : "write(2)", static_cast<void*>(at + k * kPage),
             (unsigned long long)*reinterpret_cast<uint64_t*>(w_.io_page));
    }
  }
  if (fds[0] >= 0) {
    close(fds[0]);
    close(fds[1]);
  }
  return Op::kWriteFromLazy;
}

void Thread::check_file() {
  if (w_.file_fd < 0) return;
  doing("checking the thread's file");
  struct stat st;
  if (fstat(w_.file_fd, &st) != 0) {
    g_problems.file_errors.fetch_add(1);
    report("file error: thread %d step %d: fstat on its file (fd %d): %s", w_.id, step_, w_.file_fd, strerror(errno));
    return;
  }
  if (size_t(st.st_size) != w_.file_pages * kPage) {
    g_problems.file_errors.fetch_add(1);
    report("file error: thread %d step %d: its file (fd %d) has %lld bytes, it wrote %zu: someone else wrote to it",
           w_.id, step_, w_.file_fd, (long long)st.st_size, w_.file_pages * kPage);
  }
  for (size_t k = 0; k < w_.file_pages; k++) {
    if (!pread_all(w_.file_fd, w_.io_page, kPage, off_t(k * kPage))) {
      g_problems.file_errors.fetch_add(1);
      report("file error: thread %d step %d: reading page %zu of its file: %s", w_.id, step_, k, strerror(errno));
      return;
    }
    PageLook look = check_page(w_.io_page, kPage, w_.file_tags[k], false);
    if (!look.ok) {
      g_problems.file_errors.fetch_add(1);
      report("file error: thread %d step %d: page %zu of its file (fd %d) changed: word0=%#llx, first wrong word %zu",
             w_.id, step_, k, w_.file_fd, (unsigned long long)look.word0, look.bad_word);
    }
  }
}

// --- fork and friends ------------------------------------------------------------------------

Op Thread::op_child(Op which) {
  // Every block is checked after the child is gone: its writes must not show in the parent.
  for (auto& b : w_.blocks) b.dirty = true;
  const char* name = op_info(which).name;
  pid_t pid = -1;
  if (which == Op::kSystem) {
    doing("system(\"true\")");
    int st = system("true");
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      g_problems.child_failures.fetch_add(1);
      report("child failure: thread %d step %d: system(\"true\") returned status %#x", w_.id, step_, st);
    }
    return which;
  }
  doing(name);
  switch (which) {
    case Op::kFork:
      pid = fork();
      if (pid == 0) _exit(check_in_child(w_, ChildKind::kFull));
      break;
    case Op::kVfork:
      pid = vfork();
      if (pid == 0) _exit(check_in_child(w_, ChildKind::kReadOnly));
      break;
    case Op::kUnderscoreFork:
      pid = _Fork();
      if (pid == 0) _exit(check_in_child(w_, ChildKind::kFull));
      break;
    case Op::kCloneNoVm:
      pid = pid_t(syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
      if (pid == 0) _exit(check_in_child(w_, ChildKind::kFull));
      break;
    case Op::kSpawn: {
      char seed[32];
      snprintf(seed, sizeof seed, "%llu", (unsigned long long)(w_.opt->seed + uint64_t(w_.id)));
      char* argv[] = {const_cast<char*>("/proc/self/exe"), const_cast<char*>("--child-selftest"), seed, nullptr};
      int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, environ);
      if (rc != 0) {
        errno = rc;
        pid = -1;
      }
      break;
    }
    default:
      break;
  }
  if (pid < 0) {
    failed(name, errno, nullptr);
    return which;
  }
  w_.child_pid.store(pid);
  doing("waitpid for a child");
  int st = 0;
  pid_t r;
  do {
    r = waitpid(pid, &st, 0);
  } while (r < 0 && errno == EINTR);
  w_.child_pid.store(0);
  if (r != pid) {
    failed("waitpid", errno, nullptr);
  } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    g_problems.child_failures.fetch_add(1);
    if (WIFSIGNALED(st)) {
      report("child failure: thread %d step %d: the %s child was killed by signal %d", w_.id, step_, name,
             WTERMSIG(st));
    } else {
      report("child failure: thread %d step %d: the %s child exited %d (%s)", w_.id, step_, name, WEXITSTATUS(st),
             child_status_text(WEXITSTATUS(st)));
    }
  }
  return which;
}

// --- signals ---------------------------------------------------------------------------------

Op Thread::op_signal() {
  int target = int(rng_.below(size_t(g_worker_count)));
  doing("pthread_kill(SIGUSR1)");
  int rc = pthread_kill(g_workers[target].thread, SIGUSR1);
  if (rc != 0 && rc != ESRCH) failed("pthread_kill", rc, nullptr);
  return Op::kSignal;
}

// --- shared ----------------------------------------------------------------------------------

Op Thread::op_shared_drop() {
  SharedRegion& r = g_shared[w_.id];
  size_t first = rng_.below(kSharedPages);
  size_t count = 1 + rng_.below(std::min<size_t>(8, kSharedPages - first));
  char* at = r.base + first * kPage;
  switch (rng_.below(3)) {
    case 0:
      doing("madvise(DONTNEED) on its shared region", at);
      if (madvise(at, count * kPage, MADV_DONTNEED) != 0) failed("madvise(DONTNEED) on a shared region", errno, nullptr);
      break;
    case 1:
      doing("madvise(FREE, PAGEOUT) on its shared region", at);
      if (madvise(at, count * kPage, MADV_FREE) != 0) failed("madvise(FREE) on a shared region", errno, nullptr);
      if (madvise(at, count * kPage, MADV_PAGEOUT) != 0) failed("madvise(PAGEOUT) on a shared region", errno, nullptr);
      break;
    default:
      doing("mmap(MAP_FIXED) over its shared region", at);
      if (mmap(at, count * kPage, kRw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at) {
        failed("mmap(MAP_FIXED) over a shared region", errno, nullptr);
      }
      break;
  }
  return Op::kSharedDrop;
}

Op Thread::op_shared_move_page() {
  // One page (always inside one VMA, however the region was split): it leaves for a new address,
  // and the old one stays mapped, reading zeros, while other threads may be faulting on it.
  SharedRegion& r = g_shared[w_.id];
  size_t page = rng_.below(kSharedPages);
  char* at = r.base + page * kPage;
  doing("mremap(DONTUNMAP) of a page of its shared region", at);
  void* p = mremap(at, kPage, kPage, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, nullptr);
  if (p == MAP_FAILED) {
    failed("mremap(DONTUNMAP) of a shared page", errno, nullptr);
    return Op::kSharedMovePage;
  }
  // The moved copy holds what the page held: the pattern or, if it had been dropped, zeros.
  SharedRegion copy = r;
  copy.base = static_cast<char*>(p) - page * kPage;
  doing("checking a moved shared page", p);
  SharedLook look = check_shared_page(copy, page);
  if (!look.ok || (look.pattern_words != 0 && look.pattern_words != kPage / 8)) {
    g_problems.wrong_pages.fetch_add(1);
    report("wrong page: thread %d step %d: page %zu of its shared region, moved with MREMAP_DONTUNMAP to %p: %zu words of "
           "the pattern, then not zeros",
           w_.id, step_, page, p, look.pattern_words);
  }
  w_.counts.pages_verified++;
  if (munmap(p, kPage) != 0) failed("munmap", errno, nullptr);
  return Op::kSharedMovePage;
}

Op Thread::op_shared_read() {
  int owner = int(rng_.below(size_t(g_shared_count)));
  const SharedRegion& r = g_shared[owner];
  size_t first = rng_.below(kSharedPages);
  size_t count = 1 + rng_.below(std::min<size_t>(8, kSharedPages - first));
  for (size_t i = first; i < first + count; i++) {
    doing("reading a shared page", r.base + i * kPage);
    SharedLook look = check_shared_page(r, i);
    w_.counts.pages_verified++;
    if (!look.ok) {
      g_problems.wrong_pages.fetch_add(1);
      report("wrong page: thread %d step %d: page %zu of thread %d's shared region (%p): %zu words of the pattern, "
             "then neither the pattern nor zeros",
             w_.id, step_, i, owner, static_cast<void*>(r.base + i * kPage), look.pattern_words);
    } else if (look.pattern_words == 0) {
      w_.nd.shared_zero_seen++;
    } else if (look.pattern_words != kPage / 8) {
      w_.nd.shared_torn_seen++;
    }
  }
  return Op::kSharedRead;
}

// --- the thread ------------------------------------------------------------------------------

void Thread::finish() {
  // Opening every block and checking every page: nothing may have changed behind the shadow.
  doing("final check");
  for (auto& b : w_.blocks) {
    bool all_rw = true;
    for (const auto& p : b.pages) all_rw &= p.prot == kRw;
    if (!all_rw) protect(b, 0, b.pages.size(), kRw);
    verify_block(b);
    for (const auto& p : b.pages)
      if (p.freed && p.tag) w_.nd.free_kept++;
  }
  check_file();
  if (g_persist.base) verify_persistent_slice();
  for (auto& b : w_.blocks) {
    doing("munmap at the end", b.base);
    if (munmap(b.base, b.bytes()) != 0) failed("munmap at the end", errno, &b);
  }
  w_.blocks.clear();
  if (w_.file_fd >= 0) close(w_.file_fd);
  w_.file_fd = -1;
}

void Thread::run() {
  const int steps = w_.opt->steps;
  if (w_.pre_close_block) {
    std::vector<PageState> pages(kPreClosePages, PageState{0, uint8_t(kRw), 0});
    pages[0].tag = make_tag(uint32_t(w_.id), 0);
    add_block(w_.pre_close_block, std::move(pages), true, 1).dirty = false;
    w_.pre_close_block = nullptr;
  }
  // After a close_range the program's own files come first: they take the freed numbers.
  if (w_.opt->close_range != Options::CloseRange::kNo && has(kFamIo)) ensure_file();
  for (step_ = 0; step_ < steps; step_++) {
    w_.step.store(step_, std::memory_order_relaxed);
    w_.progress_ns.store(now_ns(), std::memory_order_relaxed);
    Op chosen = choose();
    w_.op.store(int(chosen), std::memory_order_relaxed);
    Op done = perform(chosen);
    w_.counts.ops[int(done)]++;
    if (step_ % 32 == 31) {
      for (auto& b : w_.blocks) b.dirty = true;
    }
    verify_dirty();
    if (g_persist.base && step_ % 16 == 15) verify_persistent_slice();
  }
  w_.progress_ns.store(now_ns(), std::memory_order_relaxed);
  finish();
}

}  // namespace

void run_worker(Worker& w) {
  Thread t(w);
  t.run();
}

}  // namespace stress
