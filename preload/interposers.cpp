// The mmap family, interposed by symbol: what a program (or a library) calls by name reaches
// these. With UFFDLAZY_INTERCEPT=symbols, or when libc's own bodies cannot be patched, this is all
// the shim sees; otherwise libc's internal calls reach the same hooks through the detour
// (preload/libc_detour.h). Either way the call is made as a raw system call with glibc's exact
// behaviour (preload/syscall_hooks.h).
#include <cstdarg>
#include <sys/mman.h>
#include <sys/types.h>

#include "preload/syscall_hooks.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

UFFDLAZY_EXPORT void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return uffdlazy::hooks::mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

UFFDLAZY_EXPORT void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off64_t off) {
  return uffdlazy::hooks::mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

UFFDLAZY_EXPORT int munmap(void* addr, size_t len) { return uffdlazy::hooks::munmap(addr, len); }

UFFDLAZY_EXPORT void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, ...) {
  void* new_addr = nullptr;
  // As glibc does: the fifth argument is read only when the flags say it was passed.
  if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
    va_list ap;
    va_start(ap, flags);
    new_addr = va_arg(ap, void*);
    va_end(ap);
  }
  return uffdlazy::hooks::mremap(old_addr, old_len, new_len, flags, new_addr);
}

UFFDLAZY_EXPORT int madvise(void* addr, size_t len, int advice) { return uffdlazy::hooks::madvise(addr, len, advice); }
