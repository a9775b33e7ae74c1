// Wires the checkpoint (core/checkpoint/) to the pager's state: what it needs to know at a
// checkpoint, and what changes for the pager in a resumed process (pid, descriptors, options,
// a fresh fault account).
#include "core/pager/checkpointing.h"

#include <cstring>

#include "core/base/line_writer.h"
#include "core/base/mono_clock.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/process_capture.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

namespace {

// How the program took the trigger signal (a call's name), or nullptr.
constinit const char* g_trigger_taken_by = nullptr;

void describe(ckpt::ShimAccess* a) {
  a->monitor = &g.monitor;
  a->table = &g.table;
  a->table_lock = &g.lock;
  a->page_size = g.page_size;
  a->doorbell = g.monitor.doorbell();
  a->uffd_fd = g.uffd.fd();
  a->uffd_valid = g.uffd.still_open() && !g.descriptor_lost.load(std::memory_order_relaxed);
  a->uffd_features = g.uffd.features();
  a->uffd_origin = uint32_t(g.uffd.origin());
  a->uffd = &g.uffd;
  a->stderr_copy = g.summary.fd;
  const int out = exit_line_fd();
  a->message_fd = out >= 0 ? out : 2;
  a->restoring = g_restore && g_restore->ready();
  a->lazy_min_bytes = g.cfg.min_size;
}

void monitor_resumed() {
  g.counters.reset();
  // The account starts again, with the regions the resumed process is served from (the table
  // the checkpoint rebuilt from the image).
  {
    TableSection hold;
    g.counters.regions.store(g.table.live().size(), std::memory_order_relaxed);
  }
  g_stats.reset();
  g_stats.start(mono_now_ns());
  g_trace.clear();
}

void pager_resumed(const ckpt::ResumeBlock& b) {
  g.owner_pid = sys::getpid();
  // The end watch was not part of the image.
  g.end_watch.forget();
  if (b.uffd_fd >= 0) {
    g.uffd.adopt(b.uffd_fd, b.uffd_features, UffdOrigin(b.uffd_origin));
  } else {
    g.uffd.close();
  }
  g.descriptor_lost.store(false, std::memory_order_relaxed);
  // The restorer put the resumer's stderr at our copy's number.
  if (g.summary.fd >= 0) g.summary.take(g.summary.fd);
  g.cfg.stats = b.flags & ckpt::kResumeStats;
  // `uffdlazy resume` started this process: its summary line is the program's.
  g.cfg.program_pid = uint64_t(sys::getpid());
  // The resume call's paging settings (the monitor took them already; a forked child's monitor
  // reads them from here).
  if (const uint32_t ra = ckpt::resume_readahead(b.flags)) {
    g.cfg.readahead = ra;
    const uint32_t pf = ckpt::resume_prefetch(b.flags);
    g.cfg.prefetch = pf == ckpt::kResumePrefetchNone          ? Config::kPrefetchNone
                     : pf == ckpt::kResumePrefetchWorkingSet ? Config::kPrefetchWorkingSet
                                                             : Config::kPrefetchAll;
  }
  size_t n = strnlen(b.report, sizeof b.report);
  if (n >= sizeof g.cfg.report) n = 0;
  memcpy(g.cfg.report, b.report, n);
  g.cfg.report[n] = 0;
  g.cfg.trace[0] = 0;
  g.forked = false;
}

}  // namespace

void take_checkpoint_variables(char** envp) {
  static const char* const kOwn[] = {"UFFDLAZY_CHECKPOINT=", "UFFDLAZY_CHECKPOINT_AT=", "UFFDLAZY_CHECKPOINT_THEN=",
                                     "UFFDLAZY_CHECKPOINT_INCREMENTAL="};
  char** out = envp;
  for (char** e = envp; e && *e; e++) {
    bool drop = false;
    for (const char* prefix : kOwn) drop |= strncmp(*e, prefix, strlen(prefix)) == 0;
    if (!drop) *out++ = *e;
  }
  if (out) *out = nullptr;
}

bool arm_checkpointing() {
  LineWriter err;
  const char* at = g.cfg.checkpoint_at[0] ? g.cfg.checkpoint_at : "signal=USR2";
  if (g.cfg.record[0]) {
    err.str("uffdlazy: UFFDLAZY_CHECKPOINT and UFFDLAZY_RECORD cannot be used together");
    err.emit();
    return false;
  }
  if (!parse_capture_moment(at, &g_capture_at, &err) || g_capture_at.kind == CaptureMoment::kExit) {
    LineWriter w;
    w.str("uffdlazy: UFFDLAZY_CHECKPOINT_AT: ").str(err.data(), err.size());
    w.emit();
    return false;
  }
  ckpt::Settings s;
  s.path = g.cfg.checkpoint;
  s.then_stop = !g.cfg.checkpoint_continue;
  s.incremental = g.cfg.checkpoint_incremental;
  s.trigger_signal = g_capture_at.kind == CaptureMoment::kSignal ? g_capture_at.signal : 0;
  ckpt::Hooks h;
  h.describe = describe;
  h.monitor_resumed = monitor_resumed;
  h.pager_resumed = pager_resumed;
  if (!ckpt::arm_checkpoint(s, h) || !arm_capture(g_capture_at, ckpt::checkpoint_now, true)) {
    LineWriter w;
    w.str("uffdlazy: cannot arm the checkpoint (").str(at).str(")");
    w.emit();
    return false;
  }
  return true;
}

int checkpoint_trigger_signal() { return g.cfg.checkpoint[0] && !g.forked ? capture_signal() : 0; }

void program_takes_trigger(const char* how) {
  const int sig = checkpoint_trigger_signal();
  if (!sig) return;
  release_capture_signal();
  g_trigger_taken_by = how;
  LineWriter w;
  w.str("uffdlazy: checkpoint ").str(g.cfg.checkpoint).str(": the program takes ");
  append_signal_name(&w, sig);
  w.str(", the checkpoint's trigger, for itself (").str(how)
      .str("): no checkpoint will be taken on it; trigger with another signal (--at signal=NAME) or after a delay "
           "(--at after=SECONDS)");
  const int out = exit_line_fd();
  w.emit(out >= 0 ? out : 2);
}

bool checkpoint_armed_here() {
  if (!g.cfg.checkpoint[0] || g.forked || sys::getpid() != g.owner_pid) return false;
  ckpt::wait_while_image_written();
  return ckpt::checkpoint_pending();
}

int checkpoint_exit_status(int status) {
  if (!checkpoint_armed_here()) return status;
  LineWriter w;
  w.str("uffdlazy: checkpoint ").str(g.cfg.checkpoint).str(": ");
  LineWriter kids;
  int code = 2;
  if (g_trigger_taken_by) {
    w.str("no image written: the program took ");
    append_signal_name(&w, g_capture_at.signal);
    w.str(", the checkpoint's trigger, for itself (").str(g_trigger_taken_by).str(")");
    code = 4;
  } else if (ckpt::list_child_processes(&kids)) {
    w.str("no image written: the program's process ends while its child process ").str(kids.data(), kids.size())
        .str(" runs on (a daemon?); a checkpoint does not follow a child it forked");
    code = 4;
  } else {
    w.str("the program ended with no image written");
  }
  if (status != 0) {
    w.str("; exit status ").i64(status).str(" (the program's)");
  } else {
    w.str("; exit status ").i64(code);
    status = code;
  }
  const int out = exit_line_fd();
  if (out >= 0) w.emit(out);
  return status;
}

}  // namespace uffdlazy::pager
