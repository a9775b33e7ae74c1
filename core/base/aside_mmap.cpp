#include "core/base/aside_mmap.h"

#include <atomic>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

// Far below the mmap base of a non-randomised x86_64 or aarch64 process, far above its heap. On a
// smaller address space the hint is out of range and the kernel ignores it.
constexpr unsigned long kAsideBase = 0x200000000000ul;
constinit std::atomic<unsigned long> g_next{kAsideBase};

struct AsideRange {
  std::atomic<uintptr_t> start, end;
};
constexpr size_t kRemembered = 1024;
constinit AsideRange g_made[kRemembered] = {};
constinit std::atomic<size_t> g_made_count{0};

}  // namespace

long mmap_aside(size_t len, int prot, int flags, int fd, long offset) {
  unsigned long rounded = (len + 0xfffffful) & ~0xfffffful;  // keep hints 1 MiB apart
  void* hint = reinterpret_cast<void*>(g_next.fetch_add(rounded + 0x100000ul, std::memory_order_relaxed));
  long r = sys::mmap(hint, len, prot, flags, fd, offset);
  if (!sys::failed(r)) {
    size_t i = g_made_count.fetch_add(1, std::memory_order_relaxed);
    if (i < kRemembered) {
      g_made[i].end.store(uintptr_t(r) + len, std::memory_order_relaxed);
      g_made[i].start.store(uintptr_t(r), std::memory_order_release);
    }
  }
  return r;
}

bool overlaps_aside(uintptr_t start, uintptr_t end) {
  size_t n = g_made_count.load(std::memory_order_acquire);
  if (n > kRemembered) n = kRemembered;
  for (size_t i = 0; i < n; i++) {
    const uintptr_t s = g_made[i].start.load(std::memory_order_acquire);
    const uintptr_t e = g_made[i].end.load(std::memory_order_relaxed);
    if (s && s < end && start < e) return true;
  }
  return false;
}

bool aside_overflowed() { return g_made_count.load(std::memory_order_acquire) > kRemembered; }

}  // namespace uffdlazy
