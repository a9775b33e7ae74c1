// `uffdlazy record -o FILE [--at MOMENT] [--no-aslr] -- program args...`: runs a program under the
// shim and writes a snapshot of its registered memory at the chosen moment.
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/launcher.h"

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
  Launch launch;
  std::string output;
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--") {
      i++;
      break;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "-o" || a == "--output" || a == "--at" || a == "--min-size") {
      const char* v = value();
      if (!v) {
        std::fprintf(stderr, "uffdlazy record: %s needs a value\n", a.c_str());
        return 2;
      }
      if (a == "--at") {
        launch.env["UFFDLAZY_RECORD_AT"] = v;
      } else if (a == "--min-size") {
        launch.env["UFFDLAZY_MIN_SIZE"] = v;
      } else {
        output = v;
      }
    } else if (a == "--no-aslr") {
      launch.env["UFFDLAZY_NO_ASLR"] = "1";
      launch.no_aslr = true;
    } else if (a == "--stats") {
      launch.env["UFFDLAZY_STATS"] = "1";
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "uffdlazy record: unknown option '%s' (see uffdlazy record --help)\n", a.c_str());
      return 2;
    } else {
      break;
    }
  }
  if (output.empty()) {
    std::fprintf(stderr, "uffdlazy record: no output file (-o FILE)\n");
    return 2;
  }
  if (i >= argc) {
    std::fprintf(stderr, "uffdlazy record: no program given\n");
    usage(stderr);
    return 2;
  }
  launch.env["UFFDLAZY_RECORD"] = absolute_path(output);
  for (; i < argc; i++) launch.argv.push_back(argv[i]);
  return exec_under_shim(launch, "record");
}

}  // namespace uffdlazy::cli
