#include "tools/launch_options.h"

#include <cstring>

namespace uffdlazy::cli {

int parse_launch(const char* command, int argc, char** argv, const std::vector<LaunchOption>& options,
                 size_t max_positionals, void (*usage)(FILE*), Launch* launch, std::vector<std::string>* positionals,
                 bool* done) {
  *done = true;
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    }
    const LaunchOption* opt = nullptr;
    for (const auto& o : options) {
      if (a == o.name || (o.alias && a == o.alias)) opt = &o;
    }
    if (opt) {
      std::string value = "1";
      if (opt->takes_value) {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "uffdlazy %s: %s needs a value\n", command, a.c_str());
          return 2;
        }
        value = argv[++i];
        if (opt->path) value = absolute_path(value);
      }
      if (opt->variable) launch->env[opt->variable] = value;
      if (opt->no_aslr) launch->no_aslr = true;
      continue;
    }
    if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "uffdlazy %s: unknown option '%s' (see uffdlazy %s --help)\n", command, a.c_str(), command);
      return 2;
    }
    if (positionals->size() < max_positionals) {
      positionals->push_back(a);
      continue;
    }
    break;  // the program, without a "--"
  }
  if (positionals->size() < max_positionals) {
    std::fprintf(stderr, "uffdlazy %s: missing argument\n", command);
    usage(stderr);
    return 2;
  }
  if (i >= argc) {
    std::fprintf(stderr, "uffdlazy %s: no program given\n", command);
    usage(stderr);
    return 2;
  }
  for (; i < argc; i++) launch->argv.push_back(argv[i]);
  *done = false;
  return 0;
}

}  // namespace uffdlazy::cli
