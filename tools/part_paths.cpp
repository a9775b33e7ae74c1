#include "tools/part_paths.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <initializer_list>

#include "uffdlazy/install_layout.h"

namespace uffdlazy::cli {

const char* const kPartVariables[2] = {"UFFDLAZY_LIBRARY", "UFFDLAZY_RESTORER"};

namespace {

// The directory of the running uffdlazy executable (symbolic links resolved), or "".
std::string own_directory() {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  self[n] = 0;
  std::string dir(self);
  return dir.substr(0, dir.rfind('/'));
}

PartPath find_part(const char* variable, const char* file, std::initializer_list<const char*> relative, int mode) {
  if (const char* set = getenv(variable); set && *set) {
    if (access(set, mode) == 0) return {set, ""};
    return {"", std::string(variable) + "=" + set + " names no " + (mode == X_OK ? "executable " : "readable ") + "file"};
  }
  const std::string dir = own_directory();
  for (const char* r : relative) {
    char real[PATH_MAX];
    const std::string candidate = dir + "/" + r;
    if (!dir.empty() && realpath(candidate.c_str(), real) && access(real, mode) == 0) return {real, ""};
  }
  std::string looked;
  for (const char* r : relative) looked += std::string(looked.empty() ? "" : ", ") + dir + "/" + r;
  return {"", std::string("cannot find ") + file + " (looked at " + looked + "); set " + variable + " to its path"};
}

}  // namespace

PartPath find_shim() {
  return find_part("UFFDLAZY_LIBRARY", "libuffdlazy.so", {UFFDLAZY_SHIM_FROM_BINDIR, "../lib/libuffdlazy.so"}, R_OK);
}

PartPath find_restorer() {
  return find_part("UFFDLAZY_RESTORER", "uffdlazy-restorer", {UFFDLAZY_RESTORER_FROM_BINDIR, "uffdlazy-restorer"},
                   X_OK);
}

PartPath find_fetcher() {
  if (const char* set = getenv("UFFDLAZY_FETCHER"); set && *set) {
    if (access(set, X_OK) == 0) return {set, ""};
    return {"", std::string("UFFDLAZY_FETCHER=") + set + " names no executable file"};
  }
  const PartPath restorer = find_restorer();
  if (restorer.path.empty()) return restorer;
  const std::string path = restorer.path.substr(0, restorer.path.rfind('/')) + "/uffdlazy-fetch";
  if (access(path.c_str(), X_OK) == 0) return {path, ""};
  return {"", "cannot find uffdlazy-fetch (looked at " + path + "); set UFFDLAZY_FETCHER to its path"};
}

}  // namespace uffdlazy::cli
