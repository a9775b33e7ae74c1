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
               "  --stats               print the one-line account at exit\n");
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
  return exec_under_shim(launch, "record");
}

}  // namespace uffdlazy::cli
