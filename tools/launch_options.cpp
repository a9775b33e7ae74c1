#include "tools/launch_options.h"

namespace uffdlazy::cli {

Launch launch_of(const ParsedArgs& args) {
  Launch launch;
  for (const auto& [opt, value] : args.options) {
    if (opt->variable) launch.env[opt->variable] = opt->path ? absolute_path(value) : value;
    if (opt->no_aslr) launch.no_aslr = true;
  }
  launch.argv = args.program;
  return launch;
}

}  // namespace uffdlazy::cli
