// `uffdlazy run [options] -- program args...`: runs a program under the shim. Every option maps
// to a UFFDLAZY_* variable, so `run` is exactly LD_PRELOAD=libuffdlazy.so with those set.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/launch_options.h"

namespace uffdlazy::cli {

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: uffdlazy run [options] -- program [args...]\n"
               "\n"
               "Runs program with its anonymous private memory paged lazily through userfaultfd.\n"
               "\n"
               "options:\n"
               "  --stats            print a one-line account at exit (UFFDLAZY_STATS=1)\n"
               "  --strict           exit with status 3 if userfaultfd cannot be used (UFFDLAZY_STRICT=1)\n"
               "  --min-size SIZE    leave mappings smaller than SIZE alone, e.g. 64K (UFFDLAZY_MIN_SIZE)\n"
               "  --user-mode-only   allow a user-mode-only userfaultfd as a last resort\n"
               "  --report FILE      write a JSON fault report at exit (UFFDLAZY_REPORT)\n"
               "  --trace FILE       write a per-fault trace at exit (UFFDLAZY_TRACE)\n");
}

}  // namespace

int cmd_run(int argc, char** argv) {
  static const std::vector<LaunchOption> kOptions = {
      {"--stats", nullptr, "UFFDLAZY_STATS", false},
      {"--strict", nullptr, "UFFDLAZY_STRICT", false},
      {"--user-mode-only", nullptr, "UFFDLAZY_USER_MODE_ONLY", false},
      {"--min-size", nullptr, "UFFDLAZY_MIN_SIZE", true},
      {"--report", nullptr, "UFFDLAZY_REPORT", true, true},
      {"--trace", nullptr, "UFFDLAZY_TRACE", true, true},
  };
  Launch launch;
  std::vector<std::string> none;
  bool done;
  int rc = parse_launch("run", argc, argv, kOptions, 0, usage, &launch, &none, &done);
  if (done) return rc;
  return exec_under_shim(launch, "run");
}

}  // namespace uffdlazy::cli
