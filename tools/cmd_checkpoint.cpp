// `uffdlazy checkpoint -o FILE [--at MOMENT] [--then stop|continue] [--incremental] -- program args...`: runs a
// program under the shim and writes an image of the whole process at the chosen moment, from
// which `uffdlazy resume` continues it.
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

#include "tools/commands.h"
#include "tools/launch_options.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--output",
     .alias = "-o",
     .value = "FILE",
     .help = "where to write the image (mode 0600)",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_CHECKPOINT",
     .path = true,
     .required = true},
    {.name = "--at",
     .value = "MOMENT",
     .help = "when: signal=NAME (that signal sent to the program) or after=SECONDS",
     .fallback = "signal=USR2",
     .complete = Complete::kWords,
     .words = "signal=USR2 after=",
     .variable = "UFFDLAZY_CHECKPOINT_AT"},
    {.name = "--then",
     .value = "stop|continue",
     .help = "end the program once the image is written, or let it go on",
     .fallback = "stop",
     .complete = Complete::kWords,
     .words = "stop continue",
     .variable = "UFFDLAZY_CHECKPOINT_THEN"},
    {.name = "--min-size",
     .value = "SIZE",
     .help = "leave mappings smaller than SIZE alone (bytes, with an optional K, M or G suffix)",
     .fallback = "64K",
     .variable = "UFFDLAZY_MIN_SIZE"},
    {.name = "--incremental",
     .help = "later images store only the pages the program changed since the image it builds on (the first "
             "one it wrote, or, once resumed, the one it was resumed from) and refer to that image for the "
             "rest; with --then continue the next images go to FILE.2, FILE.3, ... Needs Linux 6.7 "
             "(userfaultfd asynchronous write-protect); images are written whole without it. uffdlazy compact "
             "makes one that stands alone",
     .variable = "UFFDLAZY_CHECKPOINT_INCREMENTAL"},
};

int checkpoint(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(checkpoint_verb, argc, argv, &args); rc != kParsed) return rc;
  const std::string* then = args.value("--then");
  if (then && *then != "stop" && *then != "continue") {
    return usage_error(checkpoint_verb, "--then takes stop or continue, not '" + *then + "'");
  }
  // Descriptors inherited from the caller (a shell's, a test runner's pipes) are not the
  // program's business and could not be reopened at resume.
  syscall(SYS_close_range, 3u, ~0u, 0u);
  return exec_under_shim(launch_of(args), "checkpoint");
}

}  // namespace

const VerbSpec checkpoint_verb = {
    .name = "checkpoint",
    .summary = "run a program and write an image of the whole process",
    .synopsis = "-o FILE [options] [--] program [args...]",
    .description =
        "Runs program under the shim; at the chosen moment every thread is stopped and the whole process "
        "(memory, threads, registers, open files, signal state, limits, timers) is written to FILE, to a "
        "temporary name renamed once complete. uffdlazy resume FILE continues it where it was, as often as "
        "wanted.\n\n"
        "The program starts with only stdin, stdout and stderr: other inherited descriptors are closed (a "
        "resume could not bring them back). Sockets, pipes, child processes, shared memory and a few more are "
        "refused at the checkpoint, with one line saying what.",
    .options = kOptions,
    .takes_program = true,
    .exit_status = "0    the image was written (--then stop)\n"
                   "1    writing the image failed\n"
                   "2    a bad option, or the process cannot be checkpointed (one line says why), or "
                   "the program ended before the checkpoint with status 0\n"
                   "4    no image, because the checkpoint could not have been taken: the program took the "
                   "trigger signal for itself, or its process ended while a child it forked ran on "
                   "(daemon)\n"
                   "N    with --then continue, or when the program ends first: the program's status\n"
                   "127  the program was not found",
    .example = "uffdlazy checkpoint -o app.img -- ./app   # once it is warm: kill -USR2 PID\n"
               "uffdlazy checkpoint -o py.img --at after=2 -- python3 app.py\n"
               "# app.img, then app.img.2, app.img.3, ... holding only the pages changed\n"
               "uffdlazy checkpoint -o app.img --then continue --incremental -- ./app",
    .run = checkpoint,
};

}  // namespace uffdlazy::cli
