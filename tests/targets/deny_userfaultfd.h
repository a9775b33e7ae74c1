// Takes userfaultfd away from the calling process and every process it starts: a seccomp filter
// makes userfaultfd(2) (every flag, including UFFD_USER_MODE_ONLY) and ioctl(fd,
// USERFAULTFD_IOC_NEW, ...) on /dev/userfaultfd fail with EPERM; every other system call, every
// other ioctl, is untouched (x32-ABI calls, which no program here makes, are all refused with
// EPERM rather than decoded). The filter is inherited across execve and fork, exactly as in a
// container whose seccomp profile denies userfaultfd (Docker's default does). For the tests of
// the fail-open path. Header-only: each target that needs it includes it.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace deny_userfaultfd {

#if defined(__x86_64__)
#define UFFDLAZY_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define UFFDLAZY_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "no_userfaultfd: add this architecture's AUDIT_ARCH_* value"
#endif

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif


constexpr unsigned kNr = offsetof(seccomp_data, nr);
constexpr unsigned kArch = offsetof(seccomp_data, arch);
// The ioctl request is an unsigned int for the kernel (the upper half of the register is ignored),
// so the low 32 bits of args[1] are what to compare; on a little-endian machine they come first.
constexpr unsigned kArg1Low = offsetof(seccomp_data, args) + sizeof(__u64) * 1;
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "kArg1Low assumes little endian");

constexpr __u32 kEperm = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);

inline int install_filter() {
  sock_filter prog[] = {
      // Another ABI (x32 or a compat one) has other numbers: refuse to guess, deny it outright.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UFFDLAZY_AUDIT_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
#if defined(__x86_64__)
      // x32 system calls share the arch value and carry this bit in the number.
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kEperm),
#endif
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kEperm),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg1Low),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __u32(USERFAULTFD_IOC_NEW), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kEperm),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog fprog = {static_cast<unsigned short>(sizeof prog / sizeof prog[0]), prog};
  // Required to install a filter without CAP_SYS_ADMIN, and harmless with it.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    std::fprintf(stderr, "no_userfaultfd: prctl(PR_SET_NO_NEW_PRIVS): %s\n", std::strerror(errno));
    return -1;
  }
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
    std::fprintf(stderr, "no_userfaultfd: seccomp(SECCOMP_SET_MODE_FILTER): %s\n", std::strerror(errno));
    return -1;
  }
  return 0;
}

// Proves the filter works before handing over: a launcher that silently failed would make a
// fail-open test pass for the wrong reason (or fail it for a confusing one).
inline int verify_filter() {
  errno = 0;
  long fd = syscall(SYS_userfaultfd, 0);
  if (fd >= 0 || errno != EPERM) {
    std::fprintf(stderr, "no_userfaultfd: userfaultfd(2) still works under the filter (fd %ld, %s)\n", fd,
                 std::strerror(errno));
    return -1;
  }
  errno = 0;
  // An fd that is certainly not /dev/userfaultfd: the filter must answer before the driver does.
  long r = syscall(SYS_ioctl, 0, USERFAULTFD_IOC_NEW, 0);
  if (r == 0 || errno != EPERM) {
    std::fprintf(stderr, "no_userfaultfd: ioctl(USERFAULTFD_IOC_NEW) is not filtered (%ld, %s)\n", r,
                 std::strerror(errno));
    return -1;
  }
  return 0;
}


// Both, or -1 with the reason printed.
inline int deny() { return install_filter() == 0 && verify_filter() == 0 ? 0 : -1; }

}  // namespace deny_userfaultfd
