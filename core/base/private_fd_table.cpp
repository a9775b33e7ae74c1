#include "core/base/private_fd_table.h"

#include <sched.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

bool take_private_descriptor_table(int keep_a, int keep_b) {
  if (sys::call6(SYS_unshare, CLONE_FILES) != 0) return false;
  unsigned keep[2] = {keep_a >= 0 ? unsigned(keep_a) : ~0u, keep_b >= 0 ? unsigned(keep_b) : ~0u};
  if (keep[1] < keep[0]) {
    const unsigned t = keep[0];
    keep[0] = keep[1];
    keep[1] = t;
  }
  unsigned from = 0;
  for (unsigned k : keep) {
    if (k == ~0u) break;
    if (k > from) sys::call6(SYS_close_range, from, k - 1, 0);
    from = k + 1;
  }
  sys::call6(SYS_close_range, from, ~0u, 0);
  return true;
}

}  // namespace uffdlazy
