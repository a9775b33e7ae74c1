// Direct system calls that never touch errno and never enter libc's wrappers.
//
// The shim's own calls must not go through the interposed mmap family (that would recurse and
// register our own memory), must not clobber the target's errno, and must be usable on the monitor
// thread, where no libc function that can take a lock is allowed. Each call returns the kernel's
// raw result: a value >= 0, or -errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/syscall.h>

namespace uffdlazy::sys {

#if defined(__x86_64__)
inline long call6(long n, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
inline long call6(long n, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  register long x5 __asm__("x5") = a6;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
#else
#error "uffdlazy: raw system calls are implemented for x86_64 and aarch64 only"
#endif

inline bool failed(long r) { return r < 0 && r > -4096; }

inline long mmap(void* addr, size_t len, int prot, int flags, int fd, long off) {
  return call6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
}
inline long munmap(void* addr, size_t len) { return call6(SYS_munmap, (long)addr, (long)len); }
inline long mremap(void* old, size_t old_len, size_t new_len, int flags, void* new_addr) {
  return call6(SYS_mremap, (long)old, (long)old_len, (long)new_len, flags, (long)new_addr);
}
inline long madvise(void* addr, size_t len, int advice) {
  return call6(SYS_madvise, (long)addr, (long)len, advice);
}
inline long mincore(void* addr, size_t len, unsigned char* vec) {
  return call6(SYS_mincore, (long)addr, (long)len, (long)vec);
}
inline long read(int fd, void* buf, size_t n) { return call6(SYS_read, fd, (long)buf, (long)n); }
inline long write(int fd, const void* buf, size_t n) { return call6(SYS_write, fd, (long)buf, (long)n); }
inline long pread(int fd, void* buf, size_t n, long off) {
  return call6(SYS_pread64, fd, (long)buf, (long)n, off);
}
inline long pwrite(int fd, const void* buf, size_t n, long off) {
  return call6(SYS_pwrite64, fd, (long)buf, (long)n, off);
}
inline long openat(int dirfd, const char* path, int flags, int mode = 0) {
  return call6(SYS_openat, dirfd, (long)path, flags, mode);
}
inline long close(int fd) { return call6(SYS_close, fd); }
inline long ioctl(int fd, unsigned long cmd, void* arg) { return call6(SYS_ioctl, fd, (long)cmd, (long)arg); }
inline long getpid() { return call6(SYS_getpid); }
inline long gettid() { return call6(SYS_gettid); }
inline long kill(long pid, int sig) { return call6(SYS_kill, pid, sig); }
inline long exit_group(int code) { return call6(SYS_exit_group, code); }
inline long futex(void* uaddr, int op, int val, const void* timeout = nullptr) {
  return call6(SYS_futex, (long)uaddr, op, val, (long)timeout, 0, 0);
}
inline long sigprocmask(int how, const void* set, void* old) {
  return call6(SYS_rt_sigprocmask, how, (long)set, (long)old, 8);
}
inline long fsync(int fd) { return call6(SYS_fsync, fd); }
inline long ftruncate(int fd, long len) { return call6(SYS_ftruncate, fd, len); }
inline long renameat(int olddir, const char* oldpath, int newdir, const char* newpath) {
  return call6(SYS_renameat, olddir, (long)oldpath, newdir, (long)newpath);
}
inline long unlinkat(int dirfd, const char* path, int flags) { return call6(SYS_unlinkat, dirfd, (long)path, flags); }
inline long fstat(int fd, void* st) { return call6(SYS_fstat, fd, (long)st); }
inline long clock_gettime(int clk, void* ts) { return call6(SYS_clock_gettime, clk, (long)ts); }

}  // namespace uffdlazy::sys
