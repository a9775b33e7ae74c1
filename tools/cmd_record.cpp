// `uffdlazy record -o FILE [--at MOMENT] [--no-aslr] -- program args...`: runs a program under the
// shim and writes a snapshot of its registered memory at the chosen moment.
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/launch_options.h"

namespace uffdlazy::cli {

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: uffdlazy record -o FILE [options] -- program [args...]\n"
               "\n"
               "Runs program under uffdlazy and writes a snapshot of its anonymous memory to FILE\n"
               "(a consistent point-in-time image taken by a forked child; see FORMAT.md).\n"
               "\n"
               "options:\n"
               "  -o, --output FILE     where to write the snapshot (required)\n"
               "  --at MOMENT           exit (default), signal=NAME (e.g. signal=USR2) or after=SECONDS\n"
               "  --no-aslr             run with address-space randomisation off, so a restore\n"
               "                        (also with --no-aslr) can match regions by address\n"
               "  --min-size SIZE       leave mappings smaller than SIZE alone (default 64K)\n"
               "  --stats               print the one-line account at exit\n"
               "\n"
               "Exit status: the program's; 4 if it succeeded but no snapshot was written (the\n"
               "capture failed or its moment never came). A name with %%p gets one snapshot per\n"
               "process of the run; a plain name holds the process with the most lazily paged memory.\n");
}

}  // namespace

int cmd_record(int argc, char** argv) {
  static const std::vector<LaunchOption> kOptions = {
      {"--output", "-o", "UFFDLAZY_RECORD", true, true},
      {"--at", nullptr, "UFFDLAZY_RECORD_AT", true},
      {"--no-aslr", nullptr, "UFFDLAZY_NO_ASLR", false, false, true},
      {"--min-size", nullptr, "UFFDLAZY_MIN_SIZE", true},
      {"--stats", nullptr, "UFFDLAZY_STATS", false},
  };
  Launch launch;
  std::vector<std::string> none;
  bool done;
  int rc = parse_launch("record", argc, argv, kOptions, 0, usage, &launch, &none, &done);
  if (done) return rc;
  if (!launch.env.count("UFFDLAZY_RECORD")) {
    std::fprintf(stderr, "uffdlazy record: no output file (-o FILE)\n");
    return 2;
  }
  RunOutcome run;
  rc = spawn_under_shim(launch, "record", &run);
  if (rc) return rc;
  if (!run.captures_ok) {
    // The shim said why (a failed capture, or the moment never came).
    std::fprintf(stderr, "uffdlazy record: no snapshot was written to %s\n", launch.env["UFFDLAZY_RECORD"].c_str());
    const int program = pass_on_status(run.wait_status);
    return program ? program : 4;
  }
  return pass_on_status(run.wait_status);
}

}  // namespace uffdlazy::cli
