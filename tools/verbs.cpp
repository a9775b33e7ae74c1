#include "tools/verbs.h"

#include "tools/commands.h"

namespace uffdlazy::cli {

namespace {

const VerbSpec* const kVerbs[] = {
    &run_verb,    &record_verb, &restore_verb, &checkpoint_verb, &resume_verb, &compact_verb, &inspect_verb,
    &verify_verb, &report_verb, &plot_verb,    &trace_verb,      &push_verb,   &pull_verb,    &completion_verb,
    &help_verb,   &version_verb,
};

}  // namespace

std::span<const VerbSpec* const> all_verbs() { return kVerbs; }

const VerbSpec* find_verb(std::string_view name) {
  for (const VerbSpec* v : kVerbs) {
    if (name == v->name) return v;
  }
  return nullptr;
}

}  // namespace uffdlazy::cli
