// The option parsing that run, record and restore share: each option sets one UFFDLAZY_*
// variable (or a launch flag), then comes `--` (optional) and the program with its arguments.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "tools/launcher.h"

namespace uffdlazy::cli {

struct LaunchOption {
  const char* name;             // "--report"
  const char* alias;            // "-o", or nullptr
  const char* variable;         // UFFDLAZY_* it sets, or nullptr
  bool takes_value;             // false: the variable is set to "1"
  bool path = false;            // the value is a path: made absolute (the program may chdir)
  bool no_aslr = false;         // also turns ASLR off for the program
};

// Parses argv[1..]. Words before the program that are not options are positionals (at most
// max_positionals). Fills launch (env and argv). Returns 0, or the exit status for the caller
// to return (0 after --help, 2 after a usage error, with the message printed).
int parse_launch(const char* command, int argc, char** argv, const std::vector<LaunchOption>& options,
                 size_t max_positionals, void (*usage)(FILE*), Launch* launch, std::vector<std::string>* positionals,
                 bool* done);

}  // namespace uffdlazy::cli
