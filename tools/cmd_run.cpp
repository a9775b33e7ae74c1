// `uffdlazy run [options] -- program args...`: runs a program under the shim. Every option maps
// to a UFFDLAZY_* variable, so `run` is exactly LD_PRELOAD=libuffdlazy.so with those set.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/launcher.h"

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
  Launch launch;
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "uffdlazy run: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--") {
      i++;
      break;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--stats") {
      launch.env["UFFDLAZY_STATS"] = "1";
    } else if (a == "--strict") {
      launch.env["UFFDLAZY_STRICT"] = "1";
    } else if (a == "--user-mode-only") {
      launch.env["UFFDLAZY_USER_MODE_ONLY"] = "1";
    } else if (a == "--min-size" || a == "--report" || a == "--trace") {
      const char* v = value(a.c_str());
      if (!v) return 2;
      const char* var = a == "--min-size" ? "UFFDLAZY_MIN_SIZE" : a == "--report" ? "UFFDLAZY_REPORT" : "UFFDLAZY_TRACE";
      launch.env[var] = v;
    } else if (a.size() && a[0] == '-') {
      std::fprintf(stderr, "uffdlazy run: unknown option '%s' (see uffdlazy run --help)\n", a.c_str());
      return 2;
    } else {
      break;  // the program, without a "--"
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "uffdlazy run: no program given\n");
    usage(stderr);
    return 2;
  }
  for (; i < argc; i++) launch.argv.push_back(argv[i]);
  return exec_under_shim(launch, "run");
}

}  // namespace uffdlazy::cli
