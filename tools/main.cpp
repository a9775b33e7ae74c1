#include <cstdio>
#include <cstring>

#include "tools/commands.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"run", uffdlazy::cli::cmd_run, "run a program with its anonymous memory paged lazily"},
    {"record", uffdlazy::cli::cmd_record, "run a program and write a snapshot of its memory"},
    {"restore", uffdlazy::cli::cmd_restore, "run a program with its memory restored lazily from a snapshot"},
    {"checkpoint", uffdlazy::cli::cmd_checkpoint, "run a program and write an image of the whole process"},
    {"resume", uffdlazy::cli::cmd_resume, "continue a checkpointed process where it stopped"},
    {"compact", uffdlazy::cli::cmd_compact, "write an incremental image and its parents as one image"},
    {"inspect", uffdlazy::cli::cmd_inspect, "show a snapshot's identity, regions and pages"},
    {"verify", uffdlazy::cli::cmd_verify, "check every checksum of a snapshot"},
    {"report", uffdlazy::cli::cmd_report, "print the summary of a JSON fault report"},
    {"plot", uffdlazy::cli::cmd_plot, "draw a fault report as an SVG"},
    {"trace", uffdlazy::cli::cmd_trace, "export a per-fault trace as CSV or Chrome trace JSON"},
    {"push", uffdlazy::cli::cmd_push, "upload a snapshot or image to S3 or an HTTP(S) URL"},
    {"pull", uffdlazy::cli::cmd_pull, "download a snapshot or image from S3 or an HTTP(S) URL"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: uffdlazy COMMAND [options] [-- program args...]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'uffdlazy COMMAND --help' describes a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (!std::strcmp(argv[1], c.name)) return c.fn(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "uffdlazy: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
