// The uffdlazy subcommands. Each lives in tools/cmd_<name>.cpp and returns the process exit code:
// 0 success, 1 the thing checked is bad (verify), 2 usage or input errors.
#pragma once

namespace uffdlazy::cli {

int cmd_run(int argc, char** argv);
int cmd_record(int argc, char** argv);
int cmd_restore(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_verify(int argc, char** argv);
int cmd_report(int argc, char** argv);
int cmd_plot(int argc, char** argv);
int cmd_trace(int argc, char** argv);
int cmd_checkpoint(int argc, char** argv);
int cmd_resume(int argc, char** argv);
int cmd_compact(int argc, char** argv);
int cmd_push(int argc, char** argv);
int cmd_pull(int argc, char** argv);

}  // namespace uffdlazy::cli
