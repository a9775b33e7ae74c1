// Reading the configuration, bringing up the userfaultfd and the monitor, and failing open.
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <initializer_list>

#include "core/base/line_writer.h"
#include "core/base/mono_clock.h"
#include "core/pager/checkpointing.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"
#include "core/pager/restore_prefetch.h"
#include "core/remote/remote_channel.h"

extern char** environ;

namespace uffdlazy::pager {

namespace {

void say_fail_open(const UffdOpenFailure& why) {
  LineWriter w;
  w.str("uffdlazy: userfaultfd is not available (userfaultfd(2): ");
  w.errno_text(why.syscall_errno ? why.syscall_errno : why.api_errno);
  w.str("; /dev/userfaultfd: ");
  if (why.device_errno) {
    w.errno_text(why.device_errno);
  } else {
    w.str("refused the required features");
  }
  if (g.cfg.user_mode_only && why.user_mode_errno) w.str("; user-mode-only: ").errno_text(why.user_mode_errno);
  if (g.cfg.strict) {
    const bool restoring = g_restore && g_restore->ready();
    w.str("); ").str(restoring ? "a restore needs it" : g.cfg.record[0] ? "recording needs it"
                     : g.cfg.checkpoint[0] ? "a checkpoint needs it" : "UFFDLAZY_STRICT=1")
        .str(", so exiting");
    w.emit();
    sys::exit_group(3);
  }
  w.str("); running without lazy paging");
  w.emit();
}

[[noreturn]] void refuse(const LineWriter& problem, int status) {
  LineWriter w;
  w.str("uffdlazy: ").str(problem.data(), problem.size());
  w.emit();
  for (;;) sys::exit_group(status);
}

// The process restoring a snapshot keeps it: the programs it runs must not restore it again.
// (environ itself: adding UFFDLAZY_RUN may have given the process a new array.)
void take_snapshot_out_of_environment() {
  char** envp = environ;
  static const char* const kRestoreOnly[] = {"UFFDLAZY_SNAPSHOT=", "UFFDLAZY_VERIFY=", "UFFDLAZY_WS=",
                                             "UFFDLAZY_WS_RECORD="};
  char** out = envp;
  for (char** e = envp; e && *e; e++) {
    bool drop = false;
    for (const char* prefix : kRestoreOnly) drop |= strncmp(*e, prefix, strlen(prefix)) == 0;
    if (!drop) *out++ = *e;
  }
  if (out) *out = nullptr;
}

// Whether a word of argv names the program (the file name part of its recorded path): then this
// process is presumably a wrapper that runs it (env, timeout, sh -c '...').
bool argv_names(char** argv, const char* path) {
  const char* base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (!*base) return false;
  for (char** a = argv && *argv ? argv + 1 : argv; a && *a; a++) {
    if (strstr(*a, base)) return true;
  }
  return false;
}

// The uffdlazy-fetch executable a remote restore starts: UFFDLAZY_FETCHER, else beside the shim
// in the build tree (lib/ -> bin/), else the installed layout (lib/uffdlazy/ ->
// libexec/uffdlazy/).
const char* fetcher_path() {
  static constinit char path[1024] = {};
  const char* set = nullptr;
  for (char** e = environ; e && *e; e++) {
    if (strncmp(*e, "UFFDLAZY_FETCHER=", 17) == 0) set = *e + 17;
  }
  if (set && *set) return set;
  Dl_info info = {};
  if (!dladdr(reinterpret_cast<void*>(&fetcher_path), &info) || !info.dli_fname) return "uffdlazy-fetch";
  const char* slash = strrchr(info.dli_fname, '/');
  const size_t dir = slash ? size_t(slash - info.dli_fname) : 0;
  for (const char* tail : {"/../bin/uffdlazy-fetch", "/../../libexec/uffdlazy/uffdlazy-fetch"}) {
    if (dir + strlen(tail) + 1 > sizeof path) break;
    memcpy(path, info.dli_fname, dir);
    memcpy(path + dir, tail, strlen(tail) + 1);
    if (sys::call6(SYS_faccessat, AT_FDCWD, reinterpret_cast<long>(path), X_OK, 0) == 0) return path;
  }
  return "uffdlazy-fetch";
}

// Opens the snapshot (bad input stops the program). Returns true when this process restores it;
// false when it belongs to another program of the run, which this one presumably starts.
bool open_snapshot(char** argv) {
  LineWriter problem;
  SnapshotRestore* restore = g_restore.construct();
  const bool verify = strcmp(g.cfg.verify, "none") != 0;
  const bool opened = remote::is_remote_location(g.cfg.snapshot)
                          ? restore->open_remote(g.cfg.snapshot, fetcher_path(), environ, verify, &problem)
                          : restore->open(g.cfg.snapshot, verify, &problem);
  if (!opened) {
    LineWriter w;
    w.str(g.cfg.snapshot).str(": ").str(problem.data(), problem.size());
    refuse(w, 2);
  }
  if (!restore->recorded_from_this_program(&problem)) {
    // The first program of a run whose command line does not even name the snapshot's program is
    // simply the wrong one: say so before it runs. Anything else passes the snapshot on.
    if ((g.run.first() || !g.run.attached()) && !argv_names(argv, restore->recorded_executable())) {
      LineWriter w;
      w.str(g.cfg.snapshot).str(": ").str(problem.data(), problem.size());
      refuse(w, 2);
    }
    restore->abandon();
    return false;
  }
  restore->activate();
  take_snapshot_out_of_environment();
  g.run.update([](RunShared& r) { r.restored++; });
  return true;
}


// Run without the uffdlazy command (LD_PRELOAD by hand), the first process to load the shim is the
// program: it says so to the processes it starts, whose summary lines are then told apart from
// its own (and left out when they registered nothing).
void name_this_process_the_program() {
  static constinit char entry[64] = {};
  g.cfg.program_pid = uint64_t(sys::getpid());
  LineWriter w;
  w.str("UFFDLAZY_PROGRAM_PID=").u64(g.cfg.program_pid);
  memcpy(entry, w.data(), w.size() < sizeof entry - 1 ? w.size() : sizeof entry - 1);
  putenv(entry);
}

}  // namespace

bool bring_up() {
  UffdOpenFailure why;
  // Incremental checkpoints need to know which pages the program wrote: the kernel notes it for
  // write-protected pages (userfaultfd's asynchronous write-protect), asked for here.
  if (!g.uffd.open(g.cfg.user_mode_only, &why, g.cfg.checkpoint[0] && g.cfg.checkpoint_incremental)) {
    say_fail_open(why);
    return false;
  }
  if (g.uffd.origin() == UffdOrigin::kUserModeOnly) {
    LineWriter w;
    w.str("uffdlazy: WARNING: only a user-mode-only userfaultfd is available: a system call such as read(2) "
          "into a page not yet served fails with EFAULT instead of waiting for it");
    w.emit();
  }
  Monitor::Setup setup;
  setup.uffd = &g.uffd;
  setup.table = &g.table;
  setup.table_lock = &g.lock;
  setup.counters = &g.counters;
  setup.page_size = g.page_size;
  setup.source = g_restore ? g_restore->source() : nullptr;
  if (setup.source && setup.source->descriptor() >= 0) g.source_file.take(setup.source->descriptor());
  setup.fault_around_pages = uint32_t(g.cfg.fault_around);
  setup.observer = &g_observer;
  setup.cpu = g.cfg.monitor_cpu;
  setup.spin_ns = g.cfg.spin_us * 1000;
  setup.copy_threads = uint32_t(g.cfg.copy_threads);
  configure_restore_prefetch(&setup);
  if (!g.monitor.init(setup) || !g.monitor.start()) {
    g.uffd.close();
    LineWriter w;
    w.str("uffdlazy: could not start the monitor thread");
    if (g.cfg.strict) {
      w.str("; UFFDLAZY_STRICT=1, so exiting");
      w.emit();
      sys::exit_group(3);
    }
    w.str("; running without lazy paging");
    w.emit();
    return false;
  }
  g.owner_pid = sys::getpid();
  g.active.store(true, std::memory_order_release);
  // A program whose last thread leaves without exit() must still end (program_end_watch.h). Only
  // from the main thread (the constructor, a forked child); without it the process ends as before.
  // It writes the exit-time lines to our copy of stderr.
  if (g.end_watch.arm()) g.end_watch.start(program_ended, g.summary.fd);
  return true;
}

const Config& configure(char** envp) {
  if (!g.configured) {
    LineWriter err;
    if (!parse_config(envp, &g.cfg, &err)) refuse(err, 2);
    g.configured = true;
  }
  return g.cfg;
}

void set_interception(const char* how) { g.interception = how; }

void note_own_memory(AddressRange r) {
  if (g.own_count < PagerState::kOwnRanges) g.own[g.own_count++] = r;
}

void note_allocator_code(AddressRange r) {
  if (g.allocator_code_count < PagerState::kAllocatorRanges) g.allocator_code[g.allocator_code_count++] = r;
}

void start(char** envp, char** argv) {
  configure(envp);
  if (g.cfg.disabled) return;
  // A checkpoint is of this program only, not of the programs it starts.
  take_checkpoint_variables(envp);
  LineWriter err;
  if (!parse_capture_moment(g.cfg.record_at, &g_capture_at, &err)) {
    LineWriter w;
    w.str("UFFDLAZY_RECORD_AT: ").str(err.data(), err.size());
    refuse(w, 2);
  }
  // Outputs and snapshots may concern several processes of the run (run_state.h).
  if (g.cfg.snapshot[0] || g.cfg.record[0] || g.cfg.report[0] || g.cfg.trace[0]) g.run.attach(envp, true);
  if (g.cfg.stats && !g.cfg.program_pid) name_this_process_the_program();
  g.strict_asked = g.cfg.strict;
  g.owner_pid = sys::getpid();
  if (g.cfg.stats || g.cfg.report[0] || g.cfg.trace[0] || g.cfg.snapshot[0] || g.cfg.record[0] || g.cfg.checkpoint[0]) {
    // GNU coreutils, among others, close stderr in an atexit handler, before our destructor.
    long fd = sys::call6(SYS_fcntl, 2, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) g.summary.take(move_fd_high(int(fd)));
  }
  g.page_size = getauxval(AT_PAGESZ);
  if (g.cfg.min_size < g.page_size) g.cfg.min_size = g.page_size;
  if (!g.table.init(kLiveRegions, kLimboRegions, g.page_size)) {
    LineWriter w;
    w.str("uffdlazy: cannot map the region table; running without lazy paging");
    w.emit();
    return;
  }
  if (g.cfg.snapshot[0] || g.cfg.record[0]) {
    if (g_sites.construct()->init() < 0) {
      LineWriter w;
      w.str("cannot map memory for call-site identities; exiting");
      refuse(w, 3);
    }
  }
  const bool restoring = g.cfg.snapshot[0] && open_snapshot(argv);
  // Serving zeros where a snapshot holds data would be a silently wrong page: no failing open.
  if (restoring || g.cfg.record[0] || g.cfg.checkpoint[0]) g.cfg.strict = true;
  if (restoring) {
    LineWriter problem;
    if (!prepare_restore_prefetch(&problem)) refuse(problem, 2);
  }
  g_stats.start(mono_now_ns());
  if (g.cfg.trace[0]) {
    if (g_trace.init(g.cfg.trace_capacity) == 0) {
      g_observer = LatencyObserver(&g_stats, &g_trace, 0);
    } else {
      LineWriter w;
      w.str("uffdlazy: cannot reserve memory for the fault trace; UFFDLAZY_TRACE is ignored");
      w.emit();
    }
  }
  if (g.cfg.checkpoint[0]) {
    if (bring_up() && !arm_checkpointing()) sys::exit_group(2);
    return;
  }
  if (bring_up() && g.cfg.record[0] && !arm_capture(g_capture_at, capture_now)) {
    LineWriter w;
    w.str("cannot arm the snapshot capture (").str(g.cfg.record_at).str("); exiting");
    refuse(w, 3);
  }
}

bool active() { return g.active.load(std::memory_order_acquire) && !g.monitor.failed(); }

}  // namespace uffdlazy::pager
