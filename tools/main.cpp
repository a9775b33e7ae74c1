#include <cstdio>
#include <cstring>

#include "tools/commands.h"
#include "tools/help_text.h"
#include "tools/verbs.h"

int main(int argc, char** argv) {
  using namespace uffdlazy::cli;
  if (argc < 2) {
    print_overview(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_overview(stdout);
    return 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "-V")) {
    return version_verb.run(1, argv + 1);  // the same as `uffdlazy version`
  }
  if (const VerbSpec* verb = find_verb(argv[1])) return verb->run(argc - 1, argv + 1);
  std::fprintf(stderr, "uffdlazy: unknown command '%s' (uffdlazy --help lists them)\n", argv[1]);
  return 2;
}
