// Placeholder until the command is built; see the issue that owns it.
#include <cstdio>

#include "tools/commands.h"

namespace uffdlazy::cli {

int cmd_trace(int, char**) {
  std::fprintf(stderr, "uffdlazy trace: not available in this build yet\n");
  return 2;
}

}  // namespace uffdlazy::cli
