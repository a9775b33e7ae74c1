// Shell completion scripts for uffdlazy, written from the verb tables (verb_spec.h), so that a new
// verb or option completes without anyone editing a script: `uffdlazy completion bash|zsh` prints
// them, and the build installs their output.
#pragma once

#include <span>
#include <string>

#include "tools/verb_spec.h"

namespace uffdlazy::cli {

std::string bash_completion(std::span<const VerbSpec* const> verbs);
std::string zsh_completion(std::span<const VerbSpec* const> verbs);

}  // namespace uffdlazy::cli
