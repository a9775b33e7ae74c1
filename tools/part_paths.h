// Where the uffdlazy command finds its two other parts, the shim (libuffdlazy.so, preloaded into
// the programs it runs) and the restorer (uffdlazy-restorer, which `resume` execs): the path in
// the part's variable if set (UFFDLAZY_LIBRARY, UFFDLAZY_RESTORER), else relative to the uffdlazy
// executable itself: the installed layout (bin/ beside lib/uffdlazy/ and libexec/uffdlazy/, as
// configured in CMakeLists.txt), then the build tree's (bin/ beside lib/).
#pragma once

#include <string>

namespace uffdlazy::cli {

struct PartPath {
  std::string path;     // empty: not found
  std::string problem;  // why not, for a one-line message
};

PartPath find_shim();
PartPath find_restorer();
// uffdlazy-fetch, a remote restore's fetcher: UFFDLAZY_FETCHER, else where the restorer is.
PartPath find_fetcher();

// The variables that name the parts: the command's own, never passed on to the shim.
extern const char* const kPartVariables[2];

}  // namespace uffdlazy::cli
