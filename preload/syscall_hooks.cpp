#include "preload/syscall_hooks.h"

#include <atomic>
#include <cerrno>
#include <sys/mman.h>

#include "core/base/raw_syscall.h"
#include "core/pager/lazy_pager.h"
#include "preload/loaded_objects.h"

namespace uffdlazy::hooks {

namespace {

constinit void** g_curbrk = nullptr;
// The break as the kernel last gave it, so that each brk knows how far it moved.
constinit std::atomic<uintptr_t> g_break{0};

void* finish_map(long r) {
  if (sys::failed(r)) {
    errno = int(-r);
    return MAP_FAILED;
  }
  return reinterpret_cast<void*>(r);
}

int finish_int(long r) {
  if (sys::failed(r)) {
    errno = int(-r);
    return -1;
  }
  return int(r);
}

// Advice for which the kernel sends a REMOVE event over registered memory.
bool drops_pages(int advice) {
  return advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE || advice == MADV_DONTNEED_LOCKED;
}

}  // namespace

void* mmap(void* addr, size_t len, int prot, int flags, int fd, long off, const void* caller) {
  // glibc refuses an offset that is not a multiple of 4096 without asking the kernel.
  if (off & 0xfff) {
    errno = EINVAL;
    return MAP_FAILED;
  }
  void* p = finish_map(sys::mmap(addr, len, prot, flags, fd, off));
  if (p != MAP_FAILED) pager::mapped(p, len, prot, flags, fd, caller);
  return p;
}

int munmap(void* addr, size_t len) {
  pager::before_dropping_memory();
  int r = finish_int(sys::munmap(addr, len));
  if (r == 0) pager::unmapped(addr, len);
  return r;
}

void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr) {
  // glibc: unknown flags are EINVAL before the kernel is asked; the fifth argument is read only
  // for MREMAP_FIXED and MREMAP_DONTUNMAP.
  if (unsigned(flags) > (MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) {
    errno = EINVAL;
    return MAP_FAILED;
  }
  if (!(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))) new_addr = nullptr;
  // The pager makes the call (a move across several mappings goes piece by piece) and updates the table.
  return finish_map(pager::remap(old_addr, old_len, new_len, flags, new_addr));
}

int madvise(void* addr, size_t len, int advice) {
  if (drops_pages(advice)) pager::before_dropping_memory();
  int r = finish_int(sys::madvise(addr, len, advice));
  if (r == 0) pager::advised(addr, len, advice);
  return r;
}

int brk(void* addr) {
  // glibc: the kernel's answer is the new break, whatever happened; below the request means ENOMEM.
  const long r = sys::call6(SYS_brk, reinterpret_cast<long>(addr));
  if (g_curbrk) *g_curbrk = reinterpret_cast<void*>(r);
  const uintptr_t now = uintptr_t(r);
  const uintptr_t before = g_break.exchange(now, std::memory_order_acq_rel);
  // Registered before the caller gets the memory, so its first touch is already lazy.
  if (before != now) pager::break_moved(before, now);
  if (now < reinterpret_cast<uintptr_t>(addr)) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

void init_break(void** curbrk) {
  g_curbrk = curbrk;
  g_break.store(uintptr_t(sys::call6(SYS_brk, 0)), std::memory_order_release);
}

extern "C" {

// Entered by a jump from libc's entry: the return address is still that of libc's caller.
__attribute__((visibility("hidden"))) void* uffdlazy_libc_mmap64(void* addr, size_t len, int prot, int flags, int fd,
                                                                 long off) {
  return hooks::mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

__attribute__((visibility("hidden"))) int uffdlazy_libc_munmap(void* addr, size_t len) {
  return hooks::munmap(addr, len);
}

__attribute__((visibility("hidden"))) void* uffdlazy_libc_mremap(void* old_addr, size_t old_len, size_t new_len,
                                                                 int flags, void* new_addr) {
  // libc's mremap is variadic; on x86_64 and aarch64 Linux a variadic argument travels in the
  // same register as a fifth named one, and it is read only when flags say it was passed.
  return hooks::mremap(old_addr, old_len, new_len, flags, new_addr);
}

__attribute__((visibility("hidden"))) int uffdlazy_libc_madvise(void* addr, size_t len, int advice) {
  return hooks::madvise(addr, len, advice);
}

__attribute__((visibility("hidden"))) int uffdlazy_libc_brk(void* addr) { return hooks::brk(addr); }

__attribute__((visibility("hidden"))) void uffdlazy_loader_changed() {
  const int saved = errno;
  adopt_new_objects();
  errno = saved;
}

}  // extern "C"

}  // namespace uffdlazy::hooks
