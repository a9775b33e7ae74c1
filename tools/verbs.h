// Every verb of the uffdlazy command, in the order `uffdlazy --help` lists them.
#pragma once

#include <span>
#include <string_view>

#include "tools/verb_spec.h"

namespace uffdlazy::cli {

std::span<const VerbSpec* const> all_verbs();
const VerbSpec* find_verb(std::string_view name);

}  // namespace uffdlazy::cli
