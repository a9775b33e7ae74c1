// Starting a program with the shim preloaded: finds libuffdlazy.so beside the uffdlazy binary,
// sets the environment, and execs (the program replaces the launcher, keeping its pid, stdio and
// exit status).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace uffdlazy::cli {

struct Launch {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  bool no_aslr = false;  // exec with address-space randomisation off (personality)
};

// path made absolute against the current directory (the program may chdir before it exits).
std::string absolute_path(const std::string& path);

// The preload library's path: $UFFDLAZY_LIBRARY, else ../lib/libuffdlazy.so or ./libuffdlazy.so
// relative to this executable. Empty if none exists.
std::string find_shim();

// Execs launch.argv with LD_PRELOAD set; returns only on failure (with a message, status 2 or 127).
int exec_under_shim(const Launch& launch, const char* command);

}  // namespace uffdlazy::cli
