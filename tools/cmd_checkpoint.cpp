// `uffdlazy checkpoint -o FILE [--at MOMENT] [--then stop|continue] -- program args...`: runs a
// program under the shim and writes an image of the whole process at the chosen moment, from
// which `uffdlazy resume` continues it.
#include <cstdio>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

#include "tools/commands.h"
#include "tools/launch_options.h"

namespace uffdlazy::cli {

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: uffdlazy checkpoint -o FILE [options] -- program [args...]\n"
               "\n"
               "Runs program under uffdlazy; at the chosen moment every thread is stopped and the\n"
               "whole process (memory, threads, files, signal state) is written to FILE (mode 0600,\n"
               "written to a temporary name and renamed once complete). `uffdlazy resume FILE`\n"
               "continues it where it was. The program starts with only stdin, stdout and stderr:\n"
               "other inherited descriptors are closed (a resume could not bring them back).\n"
               "\n"
               "options:\n"
               "  -o, --output FILE     where to write the image (required)\n"
               "  --at MOMENT           signal=NAME (default signal=USR2) or after=SECONDS\n"
               "  --then stop|continue  end the program once the image is written (default), or let\n"
               "                        it go on\n"
               "  --min-size SIZE       leave mappings smaller than SIZE alone (default 64K)\n"
               "  --incremental         later images store only the pages the program changed since the\n"
               "                        image it builds on (the first one it wrote, or, once resumed, the\n"
               "                        one it was resumed from) and refer to that image for the rest;\n"
               "                        with --then continue the next images go to FILE.2, FILE.3, ...\n"
               "                        Needs Linux 6.7 (userfaultfd asynchronous write-protect); images\n"
               "                        are written whole without it. `uffdlazy compact` makes one that\n"
               "                        stands alone\n"
               "\n"
               "Exit status: 0 only when an image was written. With --then stop: 0 once it is written,\n"
               "2 when the process cannot be checkpointed (one line says what: sockets, pipes,\n"
               "children, shared memory, ...), 1 when writing failed. With --then continue, and when\n"
               "the program ends before the checkpoint: the program's own status, but 2 instead of 0\n"
               "if no image was written.\n");
}

}  // namespace

int cmd_checkpoint(int argc, char** argv) {
  static const std::vector<LaunchOption> kOptions = {
      {"--output", "-o", "UFFDLAZY_CHECKPOINT", true, true},
      {"--at", nullptr, "UFFDLAZY_CHECKPOINT_AT", true},
      {"--then", nullptr, "UFFDLAZY_CHECKPOINT_THEN", true},
      {"--min-size", nullptr, "UFFDLAZY_MIN_SIZE", true},
      {"--incremental", nullptr, "UFFDLAZY_CHECKPOINT_INCREMENTAL", false},
  };
  Launch launch;
  std::vector<std::string> none;
  bool done;
  int rc = parse_launch("checkpoint", argc, argv, kOptions, 0, usage, &launch, &none, &done);
  if (done) return rc;
  if (!launch.env.count("UFFDLAZY_CHECKPOINT")) {
    std::fprintf(stderr, "uffdlazy checkpoint: no output file (-o FILE)\n");
    return 2;
  }
  auto then = launch.env.find("UFFDLAZY_CHECKPOINT_THEN");
  if (then != launch.env.end() && then->second != "stop" && then->second != "continue") {
    std::fprintf(stderr, "uffdlazy checkpoint: --then takes stop or continue, not '%s'\n", then->second.c_str());
    return 2;
  }
  // Descriptors inherited from the caller (a shell's, a test runner's pipes) are not the
  // program's business and could not be reopened at resume.
  syscall(SYS_close_range, 3u, ~0u, 0u);
  return exec_under_shim(launch, "checkpoint");
}

}  // namespace uffdlazy::cli
