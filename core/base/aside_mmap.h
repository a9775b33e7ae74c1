// Every mapping the shim makes for itself (tables, buffers, thread stacks, the snapshot file) goes
// to a far-away hint instead of the top of the program's mmap area. The program's own layout is
// then the same whatever the shim does or is configured to do: a restore that matches regions by
// address (ASLR off) finds every region where it was recorded, and the shim's memory never sits
// between two of the program's mappings (where it could be mistaken for, or merged with, theirs).
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

// Like sys::mmap(nullptr, ...): the mapping address, or -errno.
long mmap_aside(size_t len, int prot, int flags, int fd, long offset);

// Whether [start, end) overlaps memory the shim mapped for itself (a checkpoint never lets that
// be paged lazily after a resume: the monitor works in it). Conservative: mappings the shim has
// since unmapped still count, and once more mappings were made than it can remember, everything
// counts.
bool overlaps_aside(uintptr_t start, uintptr_t end);

}  // namespace uffdlazy
