// Placeholder until the command is built; see the issue that owns it.
#include <cstdio>

#include "tools/commands.h"

namespace uffdlazy::cli {

int cmd_inspect(int, char**) {
  std::fprintf(stderr, "uffdlazy inspect: not available in this build yet\n");
  return 2;
}

}  // namespace uffdlazy::cli
