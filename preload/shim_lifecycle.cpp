// Wires the process's lifecycle to the pager: start in a constructor, fork handlers, and the
// summary from a destructor. Preloaded libraries are finalised after the program's own, so most
// of the program's exit-time work is already accounted for when the summary is written.
#include <pthread.h>
#include <unistd.h>

#include "core/pager/lazy_pager.h"

extern char** environ;

namespace uffdlazy::preload {
void process_interposers_init();
void signal_interposers_init();
}

namespace {

void prepare() { uffdlazy::pager::before_fork(); }
void parent() { uffdlazy::pager::after_fork_parent(); }
void child() { uffdlazy::pager::after_fork_child(); }

// glibc passes a shared object's constructors the program's argc, argv and environment.
__attribute__((constructor)) void uffdlazy_start(int argc, char** argv, char** envp) {
  (void)argc;
  uffdlazy::preload::process_interposers_init();
  uffdlazy::preload::signal_interposers_init();
  uffdlazy::pager::start(envp ? envp : environ, argv);
  pthread_atfork(prepare, parent, child);
}

__attribute__((destructor)) void uffdlazy_finish() { uffdlazy::pager::at_exit(); }

}  // namespace
