// `uffdlazy help [COMMAND]` and `uffdlazy version`: the overview or a command's help (the same as
// `uffdlazy COMMAND --help`), and the version.
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/help_text.h"
#include "tools/option_parser.h"
#include "tools/verbs.h"
#include "uffdlazy/version.h"

namespace uffdlazy::cli {

namespace {

int help(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(help_verb, argc, argv, &args); rc != kParsed) return rc;
  if (args.operands.empty()) {
    print_overview(stdout);
    return 0;
  }
  const VerbSpec* verb = find_verb(args.operands[0]);
  if (!verb) return usage_error(help_verb, "unknown command '" + args.operands[0] + "' (uffdlazy --help lists them)");
  print_help(*verb, stdout);
  return 0;
}

int version(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(version_verb, argc, argv, &args); rc != kParsed) return rc;
  std::printf("uffdlazy %s\n", UFFDLAZY_VERSION_STRING);
  return 0;
}

}  // namespace

const VerbSpec help_verb = {
    .name = "help",
    .summary = "describe a command (the same as uffdlazy COMMAND --help)",
    .synopsis = "[COMMAND]",
    .description = "Prints a command's help: its options with their defaults and variables, its exit statuses "
                   "and an example. Without a command, lists the commands.",
    .options = {},
    .operand = "COMMAND",
    .max_operands = 1,
    .operand_complete = Complete::kVerb,
    .exit_status = "0    printed\n"
                   "2    no such command",
    .example = "uffdlazy help restore",
    .run = help,
};

const VerbSpec version_verb = {
    .name = "version",
    .summary = "print the version (the same as uffdlazy --version)",
    .synopsis = "",
    .description = "Prints the release, and the git commit it was built from when built from a checkout "
                   "(\"-dirty\": with local changes). The shim's summary line, fault reports and the files "
                   "uffdlazy writes carry the same.",
    .options = {},
    .exit_status = "0    printed",
    .example = "uffdlazy version",
    .run = version,
};

}  // namespace uffdlazy::cli
