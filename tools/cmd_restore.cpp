// `uffdlazy restore FILE [options] -- program args...`: runs a program whose matching anonymous
// regions come back from the snapshot lazily, page by page on first touch. The same as
// LD_PRELOAD=libuffdlazy.so UFFDLAZY_SNAPSHOT=FILE program args...
#include <cstdio>
#include <string>

#include <sys/wait.h>

#include "core/snapshot/snapshot_reader.h"
#include "tools/commands.h"
#include "tools/launch_options.h"

namespace uffdlazy::cli {

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: uffdlazy restore FILE [options] -- program [args...]\n"
               "\n"
               "Runs program with its anonymous regions restored lazily from the snapshot FILE. A region\n"
               "restores when the program maps it from the same call site, as the same Nth mapping of\n"
               "that site and with the same length (or, with --no-aslr, at the same address).\n"
               "\n"
               "options:\n"
               "  --no-aslr             run with address-space randomisation off (for snapshots recorded\n"
               "                        with --no-aslr)\n"
               "  --verify page|none    checksum each page as it is served (default page)\n"
               "  --report FILE         JSON fault report at exit\n"
               "  --stats               print the one-line account at exit\n");
}

}  // namespace

int cmd_restore(int argc, char** argv) {
  static const std::vector<LaunchOption> kOptions = {
      {"--no-aslr", nullptr, "UFFDLAZY_NO_ASLR", false, false, true},
      {"--verify", nullptr, "UFFDLAZY_VERIFY", true},
      {"--report", nullptr, "UFFDLAZY_REPORT", true, true},
      {"--min-size", nullptr, "UFFDLAZY_MIN_SIZE", true},
      {"--stats", nullptr, "UFFDLAZY_STATS", false},
  };
  Launch launch;
  std::vector<std::string> snapshot;
  bool done;
  int rc = parse_launch("restore", argc, argv, kOptions, 1, usage, &launch, &snapshot, &done);
  if (done) return rc;
  launch.env["UFFDLAZY_SNAPSHOT"] = absolute_path(snapshot[0]);
  RunOutcome run;
  rc = spawn_under_shim(launch, "restore", &run);
  if (rc) return rc;
  const int program = pass_on_status(run.wait_status);
  if (!run.restored && WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) != 2) {
    // Status 2 is the shim refusing the snapshot before the program ran; it said why.
    snap::SnapshotReader reader;
    const bool readable = reader.open(snapshot[0].c_str(), false).ok();
    std::fprintf(stderr, "uffdlazy restore: %s: no program of this run is the one it was recorded from%s%s%s\n",
                 snapshot[0].c_str(), readable ? " (" : "", readable ? reader.exe_path() : "", readable ? ")" : "");
    return 2;
  }
  return program;
}

}  // namespace uffdlazy::cli
