// Makes every mmap, munmap, mremap, madvise and brk of the process reach the hooks, including
// glibc's own (malloc, pthread stacks, posix_spawn...): each of these has one body in libc that
// every internal and external caller runs, so a jump written over its first bytes sends them all
// to the hook, which re-issues the system call itself (preload/syscall_hooks.h).
//
// Done once, in the constructor, before any thread exists, and only when every body is the code
// expected (preload/code_check.h): all five are patched, or none. The patched text is made r-x
// again. Also patches ld.so's _dl_debug_state, which the loader calls after each dlopen, so that
// the .bss of objects loaded later is registered too (optional: without it that .bss is unseen).
#pragma once

#include "core/base/line_writer.h"

namespace uffdlazy::detour {

struct Outcome {
  bool libc = false;    // libc's entry points jump to the hooks
  bool loader = false;  // ld.so's _dl_debug_state jumps to the loader hook
  LineWriter why_not_libc;
  LineWriter why_not_loader;
};

// test_alter: a libc function name whose body the verifier sees altered (tests only), or "".
void install(const char* test_alter, Outcome* out);

}  // namespace uffdlazy::detour
