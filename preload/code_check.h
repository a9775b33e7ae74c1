// What the detour checks before it overwrites a function's first bytes: that the function is the
// code it expects, so that replacing it with a jump to a hook that re-issues the system call
// changes nothing but who is told. Pure functions of the bytes (unit-tested on both
// architectures' encodings, whatever the build machine is).
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::detour {

enum class Arch { kX86_64, kAarch64 };

#if defined(__x86_64__)
inline constexpr Arch kHostArch = Arch::kX86_64;
#elif defined(__aarch64__)
inline constexpr Arch kHostArch = Arch::kAarch64;
#endif

// Bytes of the jump written over an entry point: x86_64 `jmp *0(%rip)` + address (14), aarch64
// `ldr x16, #8; br x16` + address (16). Neither touches a register the callee may need.
size_t jump_size(Arch arch);
// Writes the jump to `target` into out (jump_size bytes).
void encode_jump(Arch arch, uintptr_t target, unsigned char* out);

// A system call wrapper for `nr` of `size` bytes (its ELF symbol size) that the jump may replace:
// room for the jump, small as a wrapper is, and the instruction pair that loads nr and enters the
// kernel (x86_64 `mov $nr,%eax; syscall`, aarch64 `mov x8,#nr` ... `svc #0`) exactly once, with
// no other system call. Null if so, else what is wrong (a phrase).
const char* check_syscall_wrapper(Arch arch, const unsigned char* body, size_t size, long nr);

// A jump of at most +-2 GiB (x86_64 `jmp rel32`, 5 bytes) or +-128 MiB (aarch64 `b`, 4 bytes)
// from `from` to `to`, written into out; its size, or 0 when `to` is out of its reach.
size_t encode_near_jump(Arch arch, uintptr_t from, uintptr_t to, unsigned char* out);

// ld.so's _dl_debug_state: a bare return, then only padding (no-op instructions) for `needed`
// bytes in all, so that a jump of that size overwrites nothing that runs. `body` holds at least
// 16 readable bytes. Null if so.
const char* check_bare_return(Arch arch, const unsigned char* body, size_t needed);

// Replaces every system call instruction in a copy of a body with a trap: the test seam that shows
// the verifier a libc whose bytes do not match (UFFDLAZY_TEST_ALTER_LIBC).
void alter_for_test(Arch arch, unsigned char* body, size_t size);

}  // namespace uffdlazy::detour
