// Starting a program with the shim preloaded: finds libuffdlazy.so (part_paths.h), sets the
// environment, and execs (the program replaces the launcher, keeping its pid, stdio and
// exit status).
#pragma once

#include <map>
#include <string>
#include <cstdint>
#include <vector>

namespace uffdlazy::cli {

struct Launch {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  bool no_aslr = false;  // exec with address-space randomisation off (personality)
};

// path made absolute against the current directory (the program may chdir before it exits);
// an s3:// or http(s):// location is left as it is.
std::string absolute_path(const std::string& path);

// Execs launch.argv with LD_PRELOAD set; returns only on failure (with a message, status 2 or 127).
int exec_under_shim(const Launch& launch, const char* command);

// What a run started by spawn_under_shim did.
struct RunOutcome {
  int wait_status = 0;   // the program's, as waitpid reports it
  uint32_t restored = 0;      // processes that restored the snapshot
  uint32_t captures_ok = 0;   // snapshots written
  uint32_t captures_failed = 0;
};

// Runs launch.argv under the shim as a child that shares a run page (core/pager/run_state.h) with
// every process of the run, forwards the signals sent to this process (kill, not the terminal's,
// which reach the program directly), and waits for it. Returns 0 with `out` filled, or the exit
// status for the caller to return on failure (with a message).
int spawn_under_shim(const Launch& launch, const char* command, RunOutcome* out);

// The exit status that passes the program's on: its exit code, or its death by the same signal.
int pass_on_status(int wait_status);

}  // namespace uffdlazy::cli
