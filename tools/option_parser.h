// Parsing a verb's words by its table (verb_spec.h): options (--name VALUE, --name=VALUE, the
// alias), operands, then "--" or the first word that is not an option starting the program.
// Every verb parses this way, so every verb answers --help, names an unknown option, and says
// which value or argument is missing in one line.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tools/verb_spec.h"

namespace uffdlazy::cli {

struct ParsedArgs {
  std::vector<std::pair<const OptionSpec*, std::string>> options;  // in the order given
  std::vector<std::string> operands;
  std::vector<std::string> program;  // the program and its arguments (verbs that take one)

  bool has(const char* name) const;
  // The value given last for the option `name` (its long name), or nullptr.
  const std::string* value(const char* name) const;
};

// The value parse_args returns when the verb should go on.
constexpr int kParsed = -1;

// Parses argv[1..] (argv[0] is the verb). Returns kParsed, or the exit status for the verb to
// return at once: 0 after printing the help for --help or -h, 2 after a usage error (one line
// naming the problem on stderr, then the usage line).
int parse_args(const VerbSpec& verb, int argc, char** argv, ParsedArgs* out);

// A usage error found by the verb itself: "uffdlazy VERB: message", the usage line, status 2.
int usage_error(const VerbSpec& verb, const std::string& message);

}  // namespace uffdlazy::cli
