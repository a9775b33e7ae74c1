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

// Whether [start, end) overlaps a mapping made by mmap_aside (the first 1024 are remembered), so
// that accounts of the program's memory can leave the shim's own out.
bool overlaps_aside(uintptr_t start, uintptr_t end);
// More mappings were made aside than overlaps_aside() remembers: a caller that must never take
// the shim's memory for the program's (a checkpoint deciding what may be paged lazily after a
// resume) treats everything as the shim's then.
bool aside_overflowed();

}  // namespace uffdlazy
