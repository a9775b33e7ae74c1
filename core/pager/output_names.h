// File names of the shim's outputs (snapshot, report, trace): "%p" in a name stands for the pid,
// so each process of a run gets a file of its own.
#pragma once

#include <cstddef>

namespace uffdlazy::pager {

// Whether the name has a %p.
bool per_process_name(const char* name);
// name with every %p replaced by pid ("%%" stays a single %); false if it does not fit.
bool expand_name(const char* name, long pid, char* out, size_t cap);

}  // namespace uffdlazy::pager
