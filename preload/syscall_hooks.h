// The mmap family and brk, re-issued as raw system calls with glibc 2.36's exact behaviour (its
// argument checks, its errno, its __curbrk), telling the pager of each change. One implementation
// serves both front ends: the exported symbols (interposers.cpp) and libc's own entry points once
// they are patched (libc_detour.cpp).
//
// These run inside malloc with arena locks held, in signal handlers, in forked and vfork'ed
// children and before the pager has started: they never allocate, never call a patched
// function, and set errno only on failure, as glibc does.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::hooks {

void* mmap(void* addr, size_t len, int prot, int flags, int fd, long off, const void* caller);
int munmap(void* addr, size_t len);
// new_addr is what the caller passed as the fifth argument; used only when flags ask for it.
void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr);
int madvise(void* addr, size_t len, int advice);
int brk(void* addr);

// Called once, single-threaded, before libc is patched: where glibc keeps the break (its exported
// __curbrk), and the break as it stands.
void init_break(void** curbrk);

// The entry points that replace libc's (the detour jumps to them): libc's signatures.
extern "C" {
void* uffdlazy_libc_mmap64(void* addr, size_t len, int prot, int flags, int fd, long off);
int uffdlazy_libc_munmap(void* addr, size_t len);
void* uffdlazy_libc_mremap(void* old_addr, size_t old_len, size_t new_len, int flags, void* new_addr);
int uffdlazy_libc_madvise(void* addr, size_t len, int advice);
int uffdlazy_libc_brk(void* addr);
// Replaces ld.so's _dl_debug_state, which the loader calls after each change to the list of loaded
// objects (dlopen, dlclose, also libc's own dlopens): the new objects' .bss is registered.
void uffdlazy_loader_changed();
}

}  // namespace uffdlazy::hooks
