// The verbs of the uffdlazy command. Each lives in tools/cmd_<name>.cpp: its table of options and
// help (verb_spec.h) and the function that runs it, returning the process exit status (0 success,
// 1 the thing checked is bad, 2 a usage or input error; commands that run a program pass its
// status on).
#pragma once

#include "tools/verb_spec.h"

namespace uffdlazy::cli {

extern const VerbSpec run_verb;
extern const VerbSpec record_verb;
extern const VerbSpec restore_verb;
extern const VerbSpec checkpoint_verb;
extern const VerbSpec resume_verb;
extern const VerbSpec compact_verb;
extern const VerbSpec inspect_verb;
extern const VerbSpec verify_verb;
extern const VerbSpec report_verb;
extern const VerbSpec plot_verb;
extern const VerbSpec trace_verb;
extern const VerbSpec push_verb;
extern const VerbSpec pull_verb;
extern const VerbSpec completion_verb;
extern const VerbSpec help_verb;
extern const VerbSpec version_verb;

}  // namespace uffdlazy::cli
