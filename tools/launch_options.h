// What run, record, restore and checkpoint share: each of their options stands for one UFFDLAZY_*
// variable (or a launch flag), and the words after the options are the program and its arguments.
#pragma once

#include "tools/launcher.h"
#include "tools/option_parser.h"

namespace uffdlazy::cli {

// The launch the parsed words ask for: the variables the options set (paths made absolute, "1"
// for a flag) and the program with its arguments.
Launch launch_of(const ParsedArgs& args);

}  // namespace uffdlazy::cli
