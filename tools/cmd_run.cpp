// `uffdlazy run [options] -- program args...`: runs a program under the shim. Every option maps
// to a UFFDLAZY_* variable, so `run` is exactly LD_PRELOAD=libuffdlazy.so with those set.
#include "tools/commands.h"
#include "tools/launch_options.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--stats",
     .help = "at exit, print one line of counts and fault latencies on stderr for the program (whatever "
             "a wrapper script exec'd it as); UFFDLAZY_STATS=all: a line from every process of the run, the "
             "program's marked",
     .variable = "UFFDLAZY_STATS"},
    {.name = "--strict",
     .help = "exit with status 3 if userfaultfd cannot be used, instead of running the program without "
             "lazy paging",
     .variable = "UFFDLAZY_STRICT"},
    {.name = "--min-size",
     .value = "SIZE",
     .help = "leave mappings smaller than SIZE alone (bytes, with an optional K, M or G suffix)",
     .fallback = "64K",
     .variable = "UFFDLAZY_MIN_SIZE"},
    {.name = "--user-mode-only",
     .help = "allow a user-mode-only userfaultfd as a last resort: a system call that reads a page not "
             "yet served then fails with EFAULT instead of waiting",
     .variable = "UFFDLAZY_USER_MODE_ONLY"},
    {.name = "--report",
     .value = "FILE",
     .help = "write a JSON fault report at exit (read it with uffdlazy report, draw it with uffdlazy plot); "
             "%p in the name stands for the pid",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_REPORT",
     .path = true},
    {.name = "--trace",
     .value = "FILE",
     .help = "write one record per fault at exit (export it with uffdlazy trace); %p stands for the pid",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_TRACE",
     .path = true},
};

int run(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(run_verb, argc, argv, &args); rc != kParsed) return rc;
  return exec_under_shim(launch_of(args), "run");
}

}  // namespace

const VerbSpec run_verb = {
    .name = "run",
    .summary = "run a program with its anonymous memory paged lazily",
    .synopsis = "[options] [--] program [args...]",
    .description =
        "Runs program with its private anonymous memory paged lazily through userfaultfd: uffdlazy execs it "
        "with libuffdlazy.so preloaded and the UFFDLAZY_* variable of each option set, so the program keeps "
        "uffdlazy's pid, its stdin, stdout and stderr, and its exit status. The programs it starts run under "
        "the shim too.",
    .options = kOptions,
    .takes_program = true,
    .exit_status = "N    the program's own status (a program killed by a signal: the same signal)\n"
                   "2    a bad option, or a UFFDLAZY_* value the shim refuses (one line names it)\n"
                   "3    --strict, and userfaultfd cannot be used\n"
                   "126  the program cannot be executed\n"
                   "127  the program was not found",
    .example = "uffdlazy run --stats -- sqlite3 :memory: 'select 1'\n"
               "uffdlazy run --report run.json -- ./app && uffdlazy report run.json",
    .run = run,
};

}  // namespace uffdlazy::cli
