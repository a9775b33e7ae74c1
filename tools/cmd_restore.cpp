// `uffdlazy restore FILE [options] -- program args...`: runs a program whose matching anonymous
// regions come back from the snapshot lazily, page by page on first touch. The same as
// LD_PRELOAD=libuffdlazy.so UFFDLAZY_SNAPSHOT=FILE program args...
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/launcher.h"

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
  Launch launch;
  std::string snapshot;
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
    } else if (a == "--verify" || a == "--report" || a == "--min-size") {
      const char* v = value();
      if (!v) {
        std::fprintf(stderr, "uffdlazy restore: %s needs a value\n", a.c_str());
        return 2;
      }
      launch.env[a == "--verify" ? "UFFDLAZY_VERIFY" : a == "--report" ? "UFFDLAZY_REPORT" : "UFFDLAZY_MIN_SIZE"] =
          a == "--report" ? absolute_path(v) : v;
    } else if (a == "--no-aslr") {
      launch.env["UFFDLAZY_NO_ASLR"] = "1";
      launch.no_aslr = true;
    } else if (a == "--stats") {
      launch.env["UFFDLAZY_STATS"] = "1";
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "uffdlazy restore: unknown option '%s' (see uffdlazy restore --help)\n", a.c_str());
      return 2;
    } else if (snapshot.empty()) {
      snapshot = a;
    } else {
      break;
    }
  }
  if (snapshot.empty()) {
    std::fprintf(stderr, "uffdlazy restore: no snapshot file given\n");
    usage(stderr);
    return 2;
  }
  if (i >= argc) {
    std::fprintf(stderr, "uffdlazy restore: no program given\n");
    usage(stderr);
    return 2;
  }
  launch.env["UFFDLAZY_SNAPSHOT"] = absolute_path(snapshot);
  for (; i < argc; i++) launch.argv.push_back(argv[i]);
  return exec_under_shim(launch, "restore");
}

}  // namespace uffdlazy::cli
