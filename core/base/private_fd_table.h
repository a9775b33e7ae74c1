// A descriptor table of the calling thread's own, holding only the descriptors it names.
//
// The shim's threads (the monitor, the copy helper) take one when they start: the program may then
// close or reuse any number in its table without affecting them, and they hold no reference to the
// program's files (a pipe the program closes must reach EOF for its reader).
#pragma once

namespace uffdlazy {

// unshare(CLONE_FILES), then closes every descriptor but keep_a, keep_b and keep_c (-1: none). False if
// the kernel refused the unshare: the thread then stays on the shared table.
bool take_private_descriptor_table(int keep_a, int keep_b, int keep_c = -1);

}  // namespace uffdlazy
