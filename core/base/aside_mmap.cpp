#include "core/base/aside_mmap.h"

#include <atomic>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

// Far below the mmap base of a non-randomised x86_64 or aarch64 process, far above its heap. On a
// smaller address space the hint is out of range and the kernel ignores it.
constexpr unsigned long kAsideBase = 0x200000000000ul;
constinit std::atomic<unsigned long> g_next{kAsideBase};

// Every mapping made here, for overlaps_aside().
constexpr size_t kRemembered = 1024;
struct Range {
  uintptr_t start, end;
};
constinit Range g_ranges[kRemembered] = {};
constinit std::atomic<size_t> g_count{0};

}  // namespace

long mmap_aside(size_t len, int prot, int flags, int fd, long offset) {
  unsigned long rounded = (len + 0xfffffful) & ~0xfffffful;  // keep hints 1 MiB apart
  void* hint = reinterpret_cast<void*>(g_next.fetch_add(rounded + 0x100000ul, std::memory_order_relaxed));
  long r = sys::mmap(hint, len, prot, flags, fd, offset);
  if (!sys::failed(r)) {
    const size_t i = g_count.fetch_add(1, std::memory_order_acq_rel);
    if (i < kRemembered) {
      __atomic_store_n(&g_ranges[i].end, uintptr_t(r) + len, __ATOMIC_RELAXED);
      __atomic_store_n(&g_ranges[i].start, uintptr_t(r), __ATOMIC_RELEASE);
    }
  }
  return r;
}

bool overlaps_aside(uintptr_t start, uintptr_t end) {
  const size_t n = g_count.load(std::memory_order_acquire);
  if (n > kRemembered) return true;
  for (size_t i = 0; i < n; i++) {
    const uintptr_t s = __atomic_load_n(&g_ranges[i].start, __ATOMIC_ACQUIRE);
    if (!s) return true;  // being recorded right now
    if (s < end && start < __atomic_load_n(&g_ranges[i].end, __ATOMIC_RELAXED)) return true;
  }
  return false;
}

}  // namespace uffdlazy
