// `uffdlazy completion bash|zsh`: the shell completion script, written from the verb tables.
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/completion.h"
#include "tools/option_parser.h"
#include "tools/verbs.h"

namespace uffdlazy::cli {

namespace {

int completion(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(completion_verb, argc, argv, &args); rc != kParsed) return rc;
  const std::string& shell = args.operands[0];
  std::string script;
  if (shell == "bash") {
    script = bash_completion(all_verbs());
  } else if (shell == "zsh") {
    script = zsh_completion(all_verbs());
  } else {
    return usage_error(completion_verb, "no completion for '" + shell + "' (bash or zsh)");
  }
  std::fwrite(script.data(), 1, script.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 2;
}

}  // namespace

const VerbSpec completion_verb = {
    .name = "completion",
    .summary = "print the shell completion script for bash or zsh",
    .synopsis = "bash|zsh",
    .description = "Prints the completion script for the shell: verbs, options, option values (--prefetch "
                   "none|ws|all, --at exit|signal=NAME|after=SECONDS, ...), files, and the program to run with "
                   "its own arguments. Installed copies are in share/bash-completion/completions/uffdlazy and "
                   "share/zsh/vendor-completions/_uffdlazy; to use it without installing, source its output.",
    .options = {},
    .operand = "SHELL",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kWords,
    .operand_words = "bash zsh",
    .exit_status = "0    printed\n"
                   "2    a usage error, or a shell it has no script for",
    .example = "uffdlazy completion bash > ~/.local/share/bash-completion/completions/uffdlazy\n"
               "uffdlazy completion zsh > ~/.zfunc/_uffdlazy",
    .run = completion,
};

}  // namespace uffdlazy::cli
