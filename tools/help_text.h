// The help the uffdlazy command prints, formatted from the verb tables (verb_spec.h): the
// overview (`uffdlazy --help`), a verb's full help (`uffdlazy VERB --help`, `uffdlazy help VERB`)
// and its one usage line (after a usage error).
#pragma once

#include <cstdio>
#include <string>

#include "tools/verb_spec.h"

namespace uffdlazy::cli {

void print_overview(FILE* out);
void print_help(const VerbSpec& verb, FILE* out);
void print_usage_line(const VerbSpec& verb, FILE* out);

// An option as the help shows it on the left: "-o, --output FILE".
std::string option_label(const OptionSpec& option);

}  // namespace uffdlazy::cli
