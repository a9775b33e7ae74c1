// The program's mremap, carried out so that it gives what it would without the shim.
//
// Since Linux 6.17 a move (MREMAP_MAYMOVE | MREMAP_FIXED, same length) may span several mappings
// (VMAs: one allocation split by mprotect, a MAP_FIXED overlay, a registered region next to an
// unregistered one). If any of them is registered with a userfaultfd the kernel refuses with
// EFAULT, after having moved the ones before it. So such a move is made one mapping at a time:
// each piece is an ordinary move, reported by a REMAP event like any other. Whether a piece is
// registered is not asked of the table (it may lag behind the kernel by an event): every move
// across several mappings goes piece by piece, which is what the kernel does too. On a kernel
// without multi-mapping moves the call is passed through: it fails there with or without the shim.
#include <atomic>
#include <sys/mman.h>

#include "core/base/align.h"
#include "core/base/aside_mmap.h"
#include "core/base/proc_maps.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

constinit std::atomic<int> g_multi_vma_moves{0};  // 0 unknown, 1 supported, -1 not

bool kernel_moves_several_mappings() {
  int known = g_multi_vma_moves.load(std::memory_order_relaxed);
  if (known) return known > 0;
  const uint64_t ps = g.page_size;
  long src = mmap_aside(2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  long dst = mmap_aside(2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bool yes = false;
  if (!sys::failed(src) && !sys::failed(dst)) {
    sys::call6(SYS_mprotect, src + long(ps), long(ps), PROT_READ);  // two mappings now
    yes = !sys::failed(sys::mremap(reinterpret_cast<void*>(src), 2 * ps, 2 * ps, MREMAP_MAYMOVE | MREMAP_FIXED,
                                   reinterpret_cast<void*>(dst)));
  }
  if (!sys::failed(src)) sys::munmap(reinterpret_cast<void*>(src), 2 * ps);
  if (!sys::failed(dst)) sys::munmap(reinterpret_cast<void*>(dst), 2 * ps);
  g_multi_vma_moves.store(yes ? 1 : -1, std::memory_order_relaxed);
  return yes;
}

struct Piece {
  uintptr_t start, end;
};
constexpr size_t kMaxPieces = 64;

// The mappings inside [s, e), clipped to it. False unless the move must be split: the range
// starts inside a mapping and covers more than one.
struct Collect {
  uintptr_t s, e;
  Piece* pieces;
  size_t count;
  bool too_many;
};

void collect_piece(const char* line, size_t n, void* ctx) {
  Collect& c = *static_cast<Collect*>(ctx);
  MapsEntry m;
  if (!parse_maps_line(line, n, &m) || m.end <= c.s || m.start >= c.e) return;
  if (c.count == kMaxPieces) {
    c.too_many = true;
    return;
  }
  c.pieces[c.count++] = Piece{m.start > c.s ? m.start : c.s, m.end < c.e ? m.end : c.e};
}

bool mappings_in(uintptr_t s, uintptr_t e, Piece* pieces, size_t* count) {
  char buf[4096];
  Collect c{s, e, pieces, 0, false};
  if (for_each_line("/proc/self/maps", buf, sizeof buf, collect_piece, &c) < 0) return false;
  *count = c.count;
  return !c.too_many && c.count > 1 && pieces[0].start == s;
}

}  // namespace

long remap(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr) {
  const uintptr_t from = reinterpret_cast<uintptr_t>(old_addr), to = reinterpret_cast<uintptr_t>(new_addr);
  const uint64_t len = align_up(old_len, g.page_size);
  const bool plain_move = (flags & MREMAP_MAYMOVE) && (flags & MREMAP_FIXED) && old_len &&
                          len == align_up(new_len, g.page_size) && !(from & (g.page_size - 1));
  Piece pieces[kMaxPieces];
  size_t n = 0;
  if (plain_move && mine() && mappings_in(from, from + len, pieces, &n) && kernel_moves_several_mappings()) {
    for (size_t i = 0; i < n; i++) {
      const uint64_t piece_len = pieces[i].end - pieces[i].start;
      void* dst = reinterpret_cast<void*>(to + (pieces[i].start - from));
      long r = sys::mremap(reinterpret_cast<void*>(pieces[i].start), piece_len, piece_len, flags, dst);
      // A failure part-way leaves the earlier pieces moved, as the kernel itself would.
      if (sys::failed(r)) return r;
      remapped(reinterpret_cast<void*>(pieces[i].start), piece_len, dst, piece_len, flags);
    }
    return long(to);
  }
  long r = sys::mremap(old_addr, old_len, new_len, flags, new_addr);
  if (!sys::failed(r)) remapped(old_addr, old_len, reinterpret_cast<void*>(r), new_len, flags);
  return r;
}

}  // namespace uffdlazy::pager
