#include "core/base/private_fd_table.h"

#include <sched.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

bool take_private_descriptor_table(int keep_a, int keep_b, int keep_c) {
  if (sys::call6(SYS_unshare, CLONE_FILES) != 0) return false;
  unsigned keep[3] = {keep_a >= 0 ? unsigned(keep_a) : ~0u, keep_b >= 0 ? unsigned(keep_b) : ~0u,
                      keep_c >= 0 ? unsigned(keep_c) : ~0u};
  for (int i = 0; i < 3; i++) {
    for (int j = i + 1; j < 3; j++) {
      if (keep[j] < keep[i]) {
        const unsigned t = keep[i];
        keep[i] = keep[j];
        keep[j] = t;
      }
    }
  }
  unsigned from = 0;
  for (unsigned k : keep) {
    if (k == ~0u) break;
    if (k + 1 == from) continue;  // named twice
    if (k > from) sys::call6(SYS_close_range, from, k - 1, 0);
    from = k + 1;
  }
  sys::call6(SYS_close_range, from, ~0u, 0);
  return true;
}

}  // namespace uffdlazy
