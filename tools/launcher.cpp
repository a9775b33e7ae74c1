#include "tools/launcher.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/personality.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace uffdlazy::cli {

std::string find_shim() {
  if (const char* lib = getenv("UFFDLAZY_LIBRARY"); lib && *lib) return access(lib, R_OK) == 0 ? lib : "";
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  self[n] = 0;
  std::string dir(self);
  dir = dir.substr(0, dir.rfind('/'));
  for (const std::string& candidate : {dir + "/../lib/libuffdlazy.so", dir + "/libuffdlazy.so",
                                       dir + "/../lib/uffdlazy/libuffdlazy.so"}) {
    char real[PATH_MAX];
    if (realpath(candidate.c_str(), real) && access(real, R_OK) == 0) return real;
  }
  return "";
}

std::string absolute_path(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return path;
  return std::string(cwd) + "/" + path;
}

int exec_under_shim(const Launch& launch, const char* command) {
  std::string shim = find_shim();
  if (shim.empty()) {
    std::fprintf(stderr, "uffdlazy %s: cannot find libuffdlazy.so next to the uffdlazy binary; "
                         "set UFFDLAZY_LIBRARY to its path\n", command);
    return 2;
  }
  for (const auto& [k, v] : launch.env) setenv(k.c_str(), v.c_str(), 1);
  // Keep whatever the user already preloads, after the shim.
  std::string preload = shim;
  if (const char* old = getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  unsetenv("UFFDLAZY_LIBRARY");
  std::vector<char*> args;
  for (const auto& a : launch.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (launch.no_aslr && personality(ADDR_NO_RANDOMIZE | personality(0xffffffff)) < 0) {
    std::fprintf(stderr, "uffdlazy %s: cannot turn address-space randomisation off: %s\n", command, std::strerror(errno));
    return 2;
  }
  execvp(args[0], args.data());
  int err = errno;
  std::fprintf(stderr, "uffdlazy %s: cannot run '%s': %s\n", command, args[0], std::strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace uffdlazy::cli
