// The program's mremap, carried out so that it gives what it would without the shim.
//
// Since Linux 6.17 a move (MREMAP_MAYMOVE | MREMAP_FIXED, same length) may span several mappings
// (VMAs: one allocation split by mprotect, a MAP_FIXED overlay, a registered region next to an
// unregistered one), with gaps between them (kept as they are at the destination, whose pages
// facing a gap are left alone); only a gap at the start is refused. If any of the mappings is
// registered with a userfaultfd the kernel refuses with EFAULT, after having moved the ones before
// it. So such a move is made one mapping at a time, each to the same offset from the destination
// as the kernel would put it: each piece is an ordinary move, reported by a REMAP event like any
// other. Whether a piece is registered is not asked of the table (it may lag behind the kernel by
// an event): every move across several mappings goes piece by piece.
//
// The mappings are learnt in batches of at most kMaxPieces (no allocation: this runs inside the
// program's mremap, possibly in a signal handler): from /proc/self/maps, or, when it cannot be
// read (no /proc, no descriptor left), by asking the kernel itself (see single_mapping). With
// /proc the list is complete, so a batch is moved as soon as it is read; by probing, the whole
// range is walked once before anything moves, so that a mapping that cannot be probed sends the
// whole call to the kernel untouched rather than after a partial move.
//
// On a kernel without multi-mapping moves the call is passed through: it fails there with or
// without the shim. A range that overlaps its destination is passed through too: the kernel
// refuses it (EINVAL) before moving anything, whereas pieces would move over one another.
#include <atomic>
#include <cerrno>
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/base/aside_mmap.h"
#include "core/base/proc_maps.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

constinit std::atomic<int> g_multi_vma_moves{0};  // 0 unknown, 1 supported, -1 not
// The new length of a boundary probe (see single_mapping); 0 when probing does not work here.
constinit std::atomic<uint64_t> g_probe_len{0};

// Whether [a, a + len) lies inside one mapping, asked of the kernel without changing anything: an
// in-place grow (no MREMAP_MAYMOVE) first checks that the old range is inside one mapping (EFAULT
// if not, or if `a` is not mapped), and only then whether the mapping can grow. Growing to the
// largest length the kernel accepts (TASK_SIZE) would end past the top of the address space, so
// it never can: the answer is ENOMEM (or EAGAIN for a locked mapping, EPERM for a sealed one),
// and nothing changes.
long single_mapping_probe(uintptr_t a, uint64_t len, uint64_t probe_len) {
  return sys::mremap(reinterpret_cast<void*>(a), len, probe_len, 0, nullptr);
}

bool single_mapping(uintptr_t a, uint64_t len, uint64_t probe_len) {
  return single_mapping_probe(a, len, probe_len) != -EFAULT;
}

// Finds the probe length (the largest the kernel accepts: smaller ones could let the mapping
// grow) and checks the probe on two mappings: one page is one mapping, two pages are not.
uint64_t calibrate_probe(uintptr_t two_mappings, uint64_t ps) {
  static constexpr unsigned kBits[] = {56, 52, 48, 47, 39};  // x86-64 5- and 4-level, arm64, riscv
  for (unsigned bits : kBits) {
    const uint64_t cand = (uint64_t(1) << bits) - ps;
    long r = single_mapping_probe(two_mappings, ps, cand);
    if (r == -EINVAL) continue;  // longer than TASK_SIZE
    if (!sys::failed(r)) return 0;  // it grew: never expected; do not probe
    if (r == -EFAULT || single_mapping_probe(two_mappings, 2 * ps, cand) != -EFAULT) return 0;
    return cand;
  }
  return 0;
}

bool kernel_moves_several_mappings() {
  int known = g_multi_vma_moves.load(std::memory_order_relaxed);
  if (known) return known > 0;
  const uint64_t ps = g.page_size;
  long src = mmap_aside(2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  long dst = mmap_aside(2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bool yes = false;
  if (!sys::failed(src) && !sys::failed(dst)) {
    sys::call6(SYS_mprotect, src + long(ps), long(ps), PROT_READ);  // two mappings now
    g_probe_len.store(calibrate_probe(uintptr_t(src), ps), std::memory_order_relaxed);
    yes = !sys::failed(sys::mremap(reinterpret_cast<void*>(src), 2 * ps, 2 * ps, MREMAP_MAYMOVE | MREMAP_FIXED,
                                   reinterpret_cast<void*>(dst)));
  }
  // After a move the old range is a hole another thread may already have mapped into: leave it.
  if (!sys::failed(src) && !yes) sys::munmap(reinterpret_cast<void*>(src), 2 * ps);
  if (!sys::failed(dst)) sys::munmap(reinterpret_cast<void*>(dst), 2 * ps);
  g_multi_vma_moves.store(yes ? 1 : -1, std::memory_order_relaxed);
  return yes;
}

struct Piece {
  uintptr_t start, end;
};
constexpr size_t kMaxPieces = 64;

// --- from /proc/self/maps ----------------------------------------------------------------------

struct Collect {
  uintptr_t s, e;
  Piece* pieces;
  size_t count;
  bool torn;
};

void collect_piece(const char* line, size_t n, void* ctx) {
  Collect& c = *static_cast<Collect*>(ctx);
  MapsEntry m;
  if (c.count == kMaxPieces || !parse_maps_line(line, n, &m) || m.end <= c.s || m.start >= c.e) return;
  const Piece p{m.start > c.s ? m.start : c.s, m.end < c.e ? m.end : c.e};
  // The file is read in chunks, each under the mmap lock but not together: another thread that
  // changes mappings in between can make a line repeat a range an earlier line covered (the same
  // page reported twice, as it was and as it is). Moving by such a view would move one page twice.
  if (c.count && p.start < c.pieces[c.count - 1].end) {
    c.torn = true;
    return;
  }
  c.pieces[c.count++] = p;
}

// The first kMaxPieces mappings inside [s, e), clipped to it, in address order; -1 when the file
// cannot be read, or does not give one consistent view in a few tries (mappings changing fast).
long pieces_from_maps(uintptr_t s, uintptr_t e, Piece* pieces) {
  char buf[4096];
  for (int attempt = 0; attempt < 4; attempt++) {
    Collect c{s, e, pieces, 0, false};
    if (for_each_line("/proc/self/maps", buf, sizeof buf, collect_piece, &c) < 0) return -1;
    if (!c.torn) return long(c.count);
  }
  return -1;  // ask the kernel instead (pieces_by_probing)
}

// --- by probing --------------------------------------------------------------------------------

// The same as pieces_from_maps, asked of the kernel: up to `cap` pieces (all of them when pieces
// is null: a walk that only checks). -1 when a mapped page cannot be probed (a mapping that may
// not grow answers EFAULT however small the range). With `from_start`, 0 as soon as `s` itself
// is not mapped (the kernel refuses a gap at the start: no need to walk the rest).
long pieces_by_probing(uintptr_t s, uintptr_t e, Piece* pieces, size_t cap, bool from_start) {
  const uint64_t ps = g.page_size, probe_len = g_probe_len.load(std::memory_order_relaxed);
  if (!probe_len) return -1;
  long count = 0;
  uintptr_t at = s;
  while (at < e && (!pieces || size_t(count) < cap)) {
    if (!single_mapping(at, ps, probe_len)) {
      if (from_start && at == s) return 0;
      unsigned char v;
      if (sys::mincore(reinterpret_cast<void*>(at), ps, &v) != -ENOMEM) return -1;
      at += ps;  // a gap, walked a page at a time (gaps inside a moved range are rare)
      continue;
    }
    // [at, at + good) is one mapping; find where it ends: double, then halve.
    const uint64_t most = e - at;
    uint64_t good = ps, bad = 0;
    while (!bad && good < most) {
      uint64_t next = good * 2 < most ? good * 2 : most;
      if (single_mapping(at, next, probe_len)) {
        good = next;
      } else {
        bad = next;
      }
    }
    while (bad && bad - good > ps) {
      uint64_t mid = good + align_down((bad - good) / 2, ps);
      if (single_mapping(at, mid, probe_len)) {
        good = mid;
      } else {
        bad = mid;
      }
    }
    if (pieces) pieces[count] = Piece{at, at + good};
    count++;
    at += good;
  }
  return count;
}

// --- the move ----------------------------------------------------------------------------------

struct Learner {
  bool probing = false;
  bool first = true;
  // The next batch of mappings inside [s, e), at most kMaxPieces (fewer: the last batch).
  long next(uintptr_t s, uintptr_t e, Piece* pieces) {
    const bool from_start = first;
    first = false;
    if (!probing) {
      long n = pieces_from_maps(s, e, pieces);
      if (n >= 0) return n;
      probing = true;
    }
    return pieces_by_probing(s, e, pieces, kMaxPieces, from_start);
  }
};

constexpr long kPassThrough = 1;  // not an address a move can return (not page aligned)

long pass_through(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr) {
  long r = sys::mremap(old_addr, old_len, new_len, flags, new_addr);
  if (!sys::failed(r)) remapped(old_addr, old_len, reinterpret_cast<void*>(r), new_len, flags);
  return r;
}

// Moves [from, from + len) to `to` piece by piece, or returns kPassThrough when the kernel can be
// given the call as it is (one mapping, a gap at the start, mappings it cannot learn).
long move_piecewise(uintptr_t from, uint64_t len, uintptr_t to, int flags) {
  const uintptr_t end = from + len;
  Piece pieces[kMaxPieces];
  Learner learner;
  long n = learner.next(from, end, pieces);
  if (n <= 0 || pieces[0].start != from || (n == 1 && pieces[0].end == end)) return kPassThrough;
  if (learner.probing && pieces_by_probing(from, end, nullptr, 0, false) < 0) return kPassThrough;
  for (;;) {
    for (long i = 0; i < n; i++) {
      const uint64_t piece_len = pieces[i].end - pieces[i].start;
      void* dst = reinterpret_cast<void*>(to + (pieces[i].start - from));
      long r = sys::mremap(reinterpret_cast<void*>(pieces[i].start), piece_len, piece_len, flags, dst);
      // A failure part-way leaves the earlier pieces moved, as the kernel itself would.
      if (sys::failed(r)) return r;
      remapped(reinterpret_cast<void*>(pieces[i].start), piece_len, dst, piece_len, flags);
    }
    const uintptr_t done = pieces[n - 1].end;
    if (size_t(n) < kMaxPieces || done >= end) return long(to);
    n = learner.next(done, end, pieces);
    if (n == 0) return long(to);
    if (n < 0) {
      // The mappings changed under the move (another thread) so that they can no longer be
      // learnt: the rest goes to the kernel as one call, as it would have without the shim.
      long r = pass_through(reinterpret_cast<void*>(done), end - done, end - done, flags,
                            reinterpret_cast<void*>(to + (done - from)));
      return sys::failed(r) ? r : long(to);
    }
  }
}

}  // namespace

long remap(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr) {
  const uintptr_t from = reinterpret_cast<uintptr_t>(old_addr), to = reinterpret_cast<uintptr_t>(new_addr);
  const uint64_t len = align_up(old_len, g.page_size);
  const bool plain_move = (flags & MREMAP_MAYMOVE) && (flags & MREMAP_FIXED) && old_len &&
                          len == align_up(new_len, g.page_size) && !(from & (g.page_size - 1)) &&
                          !(to & (g.page_size - 1)) && from + len > from && to + len > to &&
                          (to >= from + len || from >= to + len);
  if (plain_move && mine() && kernel_moves_several_mappings()) {
    long r = move_piecewise(from, len, to, flags);
    if (r != kPassThrough) return r;
  }
  return pass_through(old_addr, old_len, new_len, flags, new_addr);
}

}  // namespace uffdlazy::pager
