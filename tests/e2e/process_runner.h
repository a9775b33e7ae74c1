// Runs a program to completion with a chosen environment and captures what it printed.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace uffdlazy::test {

struct ProcessResult {
  int exit_code = -1;   // exit status, or -1 if killed
  int signal = 0;       // terminating signal, or 0
  std::string out;
  std::string err;
};

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or overriding) the test's environment
  std::vector<std::string> unset;          // removed from the environment
  std::string stdin_data;
  bool keep_stdin_open = false;            // stdin stays open (and empty) until the process ends
  bool close_inherited_fds = false;        // the program gets only stdin, stdout and stderr
  bool with_shim = false;                  // sets LD_PRELOAD to the built libuffdlazy.so
  int timeout_seconds = 120;
};

ProcessResult run_process(const std::vector<std::string>& argv, const RunOptions& opt = {});

// A test target run twice with the same arguments: without the shim, then with it (UFFDLAZY_STATS=1
// and UFFDLAZY_STRICT=1, plus `env`), each within `timeout_seconds`; `summary` is the shim run's
// summary line. The comparison itself is the caller's.
struct PlainAndShim {
  ProcessResult plain;
  ProcessResult shim;
  std::string summary;
};
PlainAndShim run_target_both_ways(const std::string& target, const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env = {}, int timeout_seconds = 120);

// For a test that gives up on a process: every thread of it and of every process in the process
// group it leads (id,
// state, kernel wait channel, name, blocked and pending signals), one line each, so that a hang
// seen once on some host says where each thread was.
std::string describe_stuck_processes(pid_t group);

// Path helpers for the built artefacts.
std::string shim_path();
std::string cli_path();
std::string target_path(const std::string& name);

// The uffdlazy summary line from stderr ("uffdlazy: pid=..."), and one field of it ("faults").
std::string summary_line(const std::string& err, size_t nth = 0);
long summary_field(const std::string& line, const std::string& key);

}  // namespace uffdlazy::test
