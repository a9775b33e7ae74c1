// Starting a remote restore's fetcher from the shim (docs/remote.md, "How a remote restore
// runs", 1-2): the view and control memfds and the doorbell eventfd are made here, then
// uffdlazy-fetch is started with a bare clone (no exit signal: no SIGCHLD for the program, nothing
// its wait(2) reaps) and execve at once, and this waits until the object is open (or refused).
// Raw system calls only; runs in the shim's constructor, before the program.
#pragma once

#include <cstdint>

#include "core/base/line_writer.h"

namespace uffdlazy::remote {

struct RemoteOpen {
  int view_fd = -1;      // the object's bytes as far as they landed (header and metadata at once)
  int control_fd = -1;
  int bell_fd = -1;      // the monitor's doorbell (eventfd, non-blocking)
  void* control = nullptr;  // the control block, mapped shared
  uint64_t control_size = 0;
  long fetcher_pid = -1;
  int pidfd = -1;
};

// `fetcher`: the uffdlazy-fetch executable; `envp`: its environment (the program's: S3 settings,
// UFFDLAZY_FETCH_TIMEOUT, the cache variables). False with the problem appended to *err (one line,
// without the location).
bool start_fetcher(const char* location, const char* fetcher, char* const* envp, RemoteOpen* out, LineWriter* err);

// This process does not restore after all: stop the fetcher, close everything.
void stop_fetcher(RemoteOpen* ro);

}  // namespace uffdlazy::remote
