// The entries of a directory, read with raw getdents64 into a buffer on the stack: for the shim's
// threads and the checkpoint thread, which may not allocate or take libc's locks (/proc/self/fd,
// /proc/self/task).
#pragma once

#include <cstdint>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

// Calls visit(name) for each entry of the open directory `dir` ("." and ".." included), in the
// kernel's order. False if reading it failed part way (the entries seen until then were visited).
template <class Visit>
bool for_each_dir_entry(int dir, Visit&& visit) {
  alignas(8) char buf[4096];
  for (;;) {
    const long n = sys::call6(SYS_getdents64, dir, reinterpret_cast<long>(buf), sizeof buf);
    if (n < 0) return false;
    if (n == 0) return true;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: inode (8), offset (8), record length (2), type (1), name.
      uint16_t reclen;
      __builtin_memcpy(&reclen, buf + off + 16, sizeof reclen);
      const char* name = buf + off + 19;
      off += reclen;
      visit(name);
    }
  }
}

}  // namespace uffdlazy
