// What the shim leaves behind when the program exits normally: a capture taken at exit, the
// restore account, the summary line, the JSON report and the trace. The monitor keeps serving
// afterwards, since destructors that run later may still touch lazy memory.
#include "core/base/line_writer.h"
#include "core/checkpoint/resume_block.h"
#include "core/latency/json_report_writer.h"
#include "core/pager/exit_summary.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/output_names.h"
#include "core/pager/pager_state.h"
#include "core/pager/restore_prefetch.h"
#include "core/pager/seen_share.h"

namespace uffdlazy::pager {

int exit_line_fd() {
  // A program that closed every fd may have reused the number of our stderr copy for a file of
  // its own, and our line must never land in its data.
  if (g.summary.still_valid()) return g.summary.fd;
  FdIdentity err = g.summary;
  err.fd = 2;
  return err.still_valid() ? 2 : -1;
}

namespace {

uint64_t faults_served() {
  return g.counters.pages_zero.load(std::memory_order_relaxed) + g.counters.pages_data.load(std::memory_order_relaxed);
}

// Whether this process writes `name` (a report or trace): with %p always (its own file); a plain
// name holds the output of the process of the run that served the most faults (run_state.h).
bool claim(const char* name, int64_t RunShared::*best, char* path, size_t cap) {
  if (!expand_name(name, sys::getpid(), path, cap)) return false;
  if (per_process_name(name)) return true;
  const int64_t mine = int64_t(faults_served());
  bool take = true;
  g.run.update([&](RunShared& r) {
    take = mine > r.*best;
    if (take) r.*best = mine;
  });
  return take;
}

void write_report(int out) {
  char path[Config::kPathMax + 24];
  if (!claim(g.cfg.report, &RunShared::report_faults, path, sizeof path)) return;
  ReportMeta meta;
  meta.pid = uint32_t(sys::getpid());
  meta.program = program_invocation_name;
  meta.page_size = g.page_size;
  char trace_path[Config::kPathMax + 24];
  if (g.cfg.trace[0] && expand_name(g.cfg.trace, sys::getpid(), trace_path, sizeof trace_path)) {
    meta.trace = &g_trace;
    meta.trace_path = trace_path;
  }
  int r = write_json_report(path, g_stats, meta);
  if (r < 0) {
    LineWriter w;
    w.str("uffdlazy: cannot write the report ").str(path).str(": ").errno_text(-r);
    if (out >= 0) w.emit(out);
  }
}

void write_trace(int out) {
  char path[Config::kPathMax + 24];
  if (!g_trace.capacity() || !claim(g.cfg.trace, &RunShared::trace_faults, path, sizeof path)) return;
  int r = g_trace.write_file(path, uint32_t(sys::getpid()), g_stats.start_ns(), g.page_size);
  if (r < 0) {
    LineWriter w;
    w.str("uffdlazy: cannot write the trace ").str(path).str(": ").errno_text(-r);
    if (out >= 0) w.emit(out);
  }
}

// The first process of a run, at its exit (usually the last to exit: a wrapper waits for what it
// runs), says what the run as a whole failed to do. The uffdlazy command, when it started the run,
// turns that into its exit status (and says itself that nothing was restored).
void say_what_the_run_missed(int out) {
  if (out < 0) return;
  const RunShared* r = g.run.shared();
  if (r ? !g.run.first() : g.forked) return;
  const uint32_t written = r ? r->captures_ok : g.captures_written;
  const uint32_t failed = r ? r->captures_failed : g.captures_failed;
  if (g.cfg.record[0] && !written && !failed) {
    LineWriter w;
    w.str("uffdlazy: snapshot ").str(g.cfg.record).str(": nothing was recorded: ");
    if (g_capture_at.kind == CaptureMoment::kSignal) {
      w.str("the capture signal (").str(g.cfg.record_at).str(") never came");
    } else if (g_capture_at.kind == CaptureMoment::kAfter) {
      w.str("the run ended before the capture moment (").str(g.cfg.record_at).str(")");
    } else {
      w.str("no process of the run reached its exit with the shim active");
    }
    w.emit(out);
  }
  if (g.cfg.snapshot[0] && r && !r->restored && !r->launcher_pid) {
    LineWriter w;
    w.str("uffdlazy: ").str(g.cfg.snapshot).str(": no program of this run is the one it was recorded from (")
        .str(g_restore ? g_restore->recorded_executable() : "?").str("); nothing was restored");
    w.emit(out);
  }
}

// `uffdlazy resume --stats`: how long the resume took, from the times the restorer left in the
// hand-over block, and (lazy, prefetch all) when the background fill had put everything in place.
void write_resume_times(int out) {
  const ckpt::ResumeBlock& b = ckpt::resume_block();
  if (b.magic != ckpt::kResumeMagic || !b.resumes || g.forked || out < 0) return;
  if (!b.launch_ns || b.running_ns < b.launch_ns) return;
  auto ms = [](LineWriter& w, uint64_t ns) { w.fixed(ns / 10000, 2).str(" ms"); };
  LineWriter w;
  w.str("uffdlazy: resume: running ");
  ms(w, b.running_ns - b.launch_ns);
  w.str(" after launch (").str(b.flags & ckpt::kResumeLazy ? "lazy" : "eager").str("), ").u64(b.eager_pages)
      .str(" pages put in place first, ").u64(b.lazy_pages).str(" left to the monitor");
  const uint64_t filled = g.monitor.resume_filled_ns();
  if (filled >= b.launch_ns) {
    w.str("; all in place ");
    ms(w, filled - b.launch_ns);
    w.str(" after launch");
  }
  w.emit(out);
}

}  // namespace

void at_exit() {
  if (g.cfg.disabled || !g.owner_pid || sys::getpid() != g.owner_pid) return;
  if (g.cfg.record[0] && g_capture_at.kind == CaptureMoment::kExit && mine()) capture_now();
  if (g.cfg.record[0]) wait_for_capture_under_way();
  const int out = exit_line_fd();
  const bool restoring = g_restore && g_restore->ready();
  if ((g.cfg.stats || g.cfg.report[0] || g.cfg.trace[0] || restoring) && mine()) g.monitor.sync();
  if (restoring && out >= 0 && !g.forked) g_restore->write_account(g.cfg.snapshot, out);
  if (restoring) write_working_set_at_exit(out);
  // A wrapper script and its helpers (a version manager's, say) load the shim too, and each
  // registers and touches some memory (malloc's heap): by default only the program, the process
  // the uffdlazy command started (whatever it exec'd into), has a line; UFFDLAZY_STATS=all asks
  // for every process's.
  const bool program = g.cfg.program_pid && uint64_t(sys::getpid()) == g.cfg.program_pid;
  if (g.cfg.stats && out >= 0 && (g.cfg.stats_all || program)) {
    write_resume_times(out);
    const SeenShare seen = measure_seen_share();
    write_exit_summary(g.counters, g_stats, g.active.load(std::memory_order_acquire), g.uffd.origin(), g.interception,
                       seen.valid ? int64_t(seen.permille()) : -1, program, out);
  }
  if (g.cfg.report[0]) write_report(out);
  if (g.cfg.trace[0]) write_trace(out);
  say_what_the_run_missed(out);
}

void program_ended(int wait_status) {
  // No program thread is left to hold a lock or to run anything: the shim's account is written
  // as at exit (the program's own atexit handlers do not run, as they would not without the shim),
  // then the shim's threads end with the process.
  at_exit();
  for (;;) sys::exit_group((wait_status >> 8) & 0xff);
}

}  // namespace uffdlazy::pager
