#include "core/base/blocked_section.h"

namespace uffdlazy {

void __attribute__((noinline)) prefault_stack() {
  volatile char probe[kHeldStackBytes];
  // One write per page the probe spans is enough to fault each one in.
  for (unsigned i = 0; i < kHeldStackBytes; i += 512) probe[i] = 0;
  probe[kHeldStackBytes - 1] = 0;
  __asm__ volatile("" : : "r"(probe) : "memory");
}

}  // namespace uffdlazy
