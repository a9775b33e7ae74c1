// The mmap family, interposed by symbol. Each wrapper makes the real call as a raw system call
// (no dlsym: it may run before constructors, inside malloc, or while the loader holds its lock),
// sets errno exactly as libc would, and tells the pager about successful changes. The pager never
// touches errno, so a caller sees what it would see without the shim.
#include <cerrno>
#include <cstdarg>
#include <sys/mman.h>
#include <sys/types.h>

#include "core/base/raw_syscall.h"
#include "core/pager/lazy_pager.h"

#define UFFDLAZY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

void* finish_map(long r) {
  if (uffdlazy::sys::failed(r)) {
    errno = int(-r);
    return MAP_FAILED;
  }
  return reinterpret_cast<void*>(r);
}

int finish_int(long r) {
  if (r < 0) {
    errno = int(-r);
    return -1;
  }
  return int(r);
}

void* do_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off, const void* caller) {
  void* p = finish_map(uffdlazy::sys::mmap(addr, len, prot, flags, fd, off));
  if (p != MAP_FAILED) uffdlazy::pager::mapped(p, len, prot, flags, fd, caller);
  return p;
}

}  // namespace

UFFDLAZY_EXPORT void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return do_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

UFFDLAZY_EXPORT void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off64_t off) {
  return do_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

UFFDLAZY_EXPORT int munmap(void* addr, size_t len) {
  int r = finish_int(uffdlazy::sys::munmap(addr, len));
  if (r == 0) uffdlazy::pager::unmapped(addr, len);
  return r;
}

UFFDLAZY_EXPORT void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, ...) {
  void* new_addr = nullptr;
  // As glibc does: the fifth argument is read whenever the kernel may use it.
  if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
    va_list ap;
    va_start(ap, flags);
    new_addr = va_arg(ap, void*);
    va_end(ap);
  }
  return finish_map(uffdlazy::pager::remap(old_addr, old_len, new_len, flags, new_addr));
}

UFFDLAZY_EXPORT int madvise(void* addr, size_t len, int advice) {
  int r = finish_int(uffdlazy::sys::madvise(addr, len, advice));
  if (r == 0) uffdlazy::pager::advised(addr, len, advice);
  return r;
}
