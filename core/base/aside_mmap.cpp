#include "core/base/aside_mmap.h"

#include <atomic>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

// Far below the mmap base of a non-randomised x86_64 or aarch64 process, far above its heap. On a
// smaller address space the hint is out of range and the kernel ignores it.
constexpr unsigned long kAsideBase = 0x200000000000ul;
constinit std::atomic<unsigned long> g_next{kAsideBase};

}  // namespace

long mmap_aside(size_t len, int prot, int flags, int fd, long offset) {
  unsigned long rounded = (len + 0xfffffful) & ~0xfffffful;  // keep hints 1 MiB apart
  void* hint = reinterpret_cast<void*>(g_next.fetch_add(rounded + 0x100000ul, std::memory_order_relaxed));
  return sys::mmap(hint, len, prot, flags, fd, offset);
}

}  // namespace uffdlazy
