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
               "  --readahead PAGES     most owed pages one fault brings in, adaptively (default 1024;\n"
               "                        1 = one page per fault)\n"
               "  --prefetch MODE       what to install while the program runs without faulting:\n"
               "                        none (on demand only), ws (the working set, then stop) or\n"
               "                        all (the working set first, then everything else; default)\n"
               "  --ws FILE             replay this working set first (recorded with --ws-record from\n"
               "                        the same snapshot)\n"
               "  --ws-record FILE      write the pages this run touches, in first-touch order (turns\n"
               "                        readahead and prefetch off, so every touch is seen)\n"
               "  --report FILE         JSON fault report at exit\n"
               "  --stats               print the one-line account at exit\n");
}

}  // namespace

int cmd_restore(int argc, char** argv) {
  static const std::vector<LaunchOption> kOptions = {
      {"--no-aslr", nullptr, "UFFDLAZY_NO_ASLR", false, false, true},
      {"--verify", nullptr, "UFFDLAZY_VERIFY", true},
      {"--readahead", nullptr, "UFFDLAZY_READAHEAD", true},
      {"--prefetch", nullptr, "UFFDLAZY_PREFETCH", true},
      {"--ws", nullptr, "UFFDLAZY_WS", true, true},
      {"--ws-record", nullptr, "UFFDLAZY_WS_RECORD", true, true},
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
