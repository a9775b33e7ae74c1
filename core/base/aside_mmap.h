// Mappings the shim makes only in some modes (the restore's snapshot file, its bitmaps, the
// call-site table) would shift every later mapping of the program. With ASLR off, a restore
// matches regions by address, so in that mode these go to a far-away hint instead of the top of
// the mmap area, leaving the program's own layout exactly as it was when it was recorded.
#pragma once

#include <cstddef>

namespace uffdlazy {

void set_mappings_aside(bool on);
// Like sys::mmap(nullptr, ...): the mapping address, or -errno.
long mmap_aside(size_t len, int prot, int flags, int fd, long offset);

}  // namespace uffdlazy
