// `uffdlazy record -o FILE [--at MOMENT] [--no-aslr] -- program args...`: runs a program under the
// shim and writes a snapshot of its registered memory at the chosen moment.
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/launch_options.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--output",
     .alias = "-o",
     .value = "FILE",
     .help = "where to write the snapshot; %p in the name stands for the pid (one snapshot per process "
             "of the run; a plain name holds the process with the most lazily paged memory)",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_RECORD",
     .path = true,
     .required = true},
    {.name = "--at",
     .value = "MOMENT",
     .help = "when to take the snapshot: exit (after the program's exit handlers), signal=NAME (on that "
             "signal sent to the program, e.g. signal=USR2; not one the program handles) or after=SECONDS",
     .fallback = "exit",
     .complete = Complete::kWords,
     .words = "exit signal=USR2 after=",
     .variable = "UFFDLAZY_RECORD_AT"},
    {.name = "--no-aslr",
     .help = "run the program with address-space randomisation off, so that a restore (also with "
             "--no-aslr) matches regions by address as well",
     .variable = "UFFDLAZY_NO_ASLR",
     .no_aslr = true},
    {.name = "--min-size",
     .value = "SIZE",
     .help = "leave mappings smaller than SIZE alone (bytes, with an optional K, M or G suffix)",
     .fallback = "64K",
     .variable = "UFFDLAZY_MIN_SIZE"},
    {.name = "--stats",
     .help = "print the program's one-line account at exit (UFFDLAZY_STATS=all: every process's)",
     .variable = "UFFDLAZY_STATS"},
};

int record(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(record_verb, argc, argv, &args); rc != kParsed) return rc;
  const Launch launch = launch_of(args);
  RunOutcome run;
  if (const int rc = spawn_under_shim(launch, "record", &run)) return rc;
  if (!run.captures_ok) {
    // The shim said why (a failed capture, or the moment never came).
    std::fprintf(stderr, "uffdlazy record: no snapshot was written to %s\n", launch.env.at("UFFDLAZY_RECORD").c_str());
    const int program = pass_on_status(run.wait_status);
    return program ? program : 4;
  }
  return pass_on_status(run.wait_status);
}

}  // namespace

const VerbSpec record_verb = {
    .name = "record",
    .summary = "run a program and write a snapshot of its memory",
    .synopsis = "-o FILE [options] [--] program [args...]",
    .description =
        "Runs program under the shim and writes a snapshot of its lazily paged anonymous memory to FILE at "
        "the chosen moment: a consistent point-in-time image taken by a child cloned at that instant, "
        "written to a temporary name and renamed once complete. uffdlazy restore gives a later run of the "
        "same program that memory back, page by page as it touches it.\n\n"
        "uffdlazy waits for the program and passes on the signals sent to it.",
    .options = kOptions,
    .takes_program = true,
    .exit_status = "N    the program's own status (a program killed by a signal: the same signal)\n"
                   "2    a bad option or variable, or the shim could not start the recording\n"
                   "3    userfaultfd cannot be used\n"
                   "4    the program succeeded but no snapshot was written (the capture failed, or its "
                   "moment never came; a line says which)\n"
                   "127  the program was not found",
    .example = "uffdlazy record -o app.snap -- ./app --warm-up\n"
               "uffdlazy record -o app.snap --at signal=USR2 -- ./server   # kill -USR2 PID",
    .run = record,
};

}  // namespace uffdlazy::cli
