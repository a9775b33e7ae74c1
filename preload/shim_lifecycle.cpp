// Wires the process's lifecycle to the pager: start in a constructor, fork handlers, and the
// summary from a destructor. Preloaded libraries are finalised after the program's own, so most
// of the program's exit-time work is already accounted for when the summary is written.
//
// The constructor runs first of all (priority 101), while the process still has one thread: it
// chooses how to intercept (patching libc needs a single thread), then starts the pager (whose
// monitor is the first extra thread), then registers the memory that existed before.
#include <cstring>
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include "core/base/hidden_thread.h"
#include "core/base/line_writer.h"
#include "core/pager/lazy_pager.h"
#include "preload/libc_detour.h"
#include "preload/loaded_objects.h"

extern char** environ;

namespace uffdlazy::preload {
void process_interposers_init();
void signal_interposers_init();
void io_interposers_init();
void child_pid_interposers_init();
}

namespace {

// fork() alone (not _Fork or clone, whose children run no handler) makes members of a checkpoint's
// process tree: the slot is reserved before the copy, the child takes it in after_fork_child.
void prepare() {
  uffdlazy::pager::reserve_tree_slot();
  uffdlazy::pager::before_fork();
}
void parent() {
  uffdlazy::pager::after_fork_parent();
  uffdlazy::pager::tree_slot_forked();
}
void child() { uffdlazy::pager::after_fork_child(); }

// glibc's count of its threads (see set_libc_thread_count): a GLIBC_PRIVATE variable, which
// libthread_db reads too. Looked up while the process has one thread, before the shim starts any.
void count_shim_threads_out() {
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  if (!libc) return;
  if (auto* count = static_cast<unsigned*>(dlvsym(libc, "__nptl_nthreads", "GLIBC_PRIVATE"))) {
    uffdlazy::set_libc_thread_count(count);
  }
  dlclose(libc);
}

bool intercept_inside_libc(const uffdlazy::Config& cfg) {
  if (strcmp(cfg.intercept, "libc") != 0) return false;
  using uffdlazy::LineWriter;
  uffdlazy::detour::Outcome out;
  if (!uffdlazy::init_loaded_objects()) {
    out.why_not_libc.str("libc or ld.so could not be identified among the loaded objects");
  } else {
    uffdlazy::detour::install(cfg.test_alter_libc, &out);
  }
  if (!out.libc) {
    if (cfg.stats) {
      LineWriter w;
      w.str("uffdlazy: cannot intercept inside libc: ").str(out.why_not_libc.data(), out.why_not_libc.size())
          .str("; intercepting exported symbols only (memory malloc maps is not seen)");
      w.emit();
    }
    return false;
  }
  if (!out.loader && cfg.stats) {
    LineWriter w;
    w.str("uffdlazy: cannot watch the loader: ").str(out.why_not_loader.data(), out.why_not_loader.size())
        .str("; the .bss of libraries loaded later by dlopen is not seen");
    w.emit();
  }
  return true;
}

// glibc passes a shared object's constructors the program's argc, argv and environment.
__attribute__((constructor(101))) void uffdlazy_start(int argc, char** argv, char** envp) {
  (void)argc;
  if (!envp) envp = environ;
  uffdlazy::preload::process_interposers_init();
  uffdlazy::preload::signal_interposers_init();
  uffdlazy::preload::io_interposers_init();
  uffdlazy::preload::child_pid_interposers_init();
  const uffdlazy::Config& cfg = uffdlazy::pager::configure(envp);
  if (cfg.disabled) return;
  count_shim_threads_out();
  const bool libc = intercept_inside_libc(cfg);
  uffdlazy::pager::set_interception(libc ? "libc" : "symbols");
  uffdlazy::pager::start(envp, argv);
  pthread_atfork(prepare, parent, child);
  if (libc) uffdlazy::adopt_startup_memory();
}

__attribute__((destructor)) void uffdlazy_finish() { uffdlazy::pager::at_exit(); }

}  // namespace
