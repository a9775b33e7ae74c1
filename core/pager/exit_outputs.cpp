// What the shim leaves behind when the program exits normally: a capture taken at exit, the
// restore account, the summary line, the JSON report and the trace. The monitor keeps serving
// afterwards, since destructors that run later may still touch lazy memory.
#include "core/base/line_writer.h"
#include "core/latency/json_report_writer.h"
#include "core/pager/exit_summary.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"
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

void at_exit() {
  if (g.cfg.disabled || !g.owner_pid || sys::getpid() != g.owner_pid) return;
  if (g.cfg.record[0] && g_capture_at.kind == CaptureMoment::kExit && mine()) capture_now();
  if (!g.cfg.stats && !g.cfg.report[0] && !g.cfg.trace[0] && !g.cfg.snapshot[0]) return;
  const int out = exit_line_fd();
  if (mine()) g.monitor.sync();
  if (g_restore && g_restore->ready() && out >= 0 && !g.forked) g_restore->write_account(g.cfg.snapshot, out);
  if (g.cfg.stats && out >= 0) {
    const SeenShare seen = measure_seen_share();
    write_exit_summary(g.counters, g_stats, g.active.load(std::memory_order_acquire), g.uffd.origin(), g.interception,
                       seen.valid ? int64_t(seen.permille()) : -1, out);
  }
  if (g.cfg.report[0]) {
    ReportMeta meta;
    meta.pid = uint32_t(sys::getpid());
    meta.program = program_invocation_name;
    meta.page_size = g.page_size;
    if (g.cfg.trace[0]) {
      meta.trace = &g_trace;
      meta.trace_path = g.cfg.trace;
    }
    int r = write_json_report(g.cfg.report, g_stats, meta);
    if (r < 0) {
      LineWriter w;
      w.str("uffdlazy: cannot write the report ").str(g.cfg.report).str(": ").errno_text(-r);
      if (out >= 0) w.emit(out);
    }
  }
  if (g.cfg.trace[0] && g_trace.capacity()) {
    int r = g_trace.write_file(g.cfg.trace, uint32_t(sys::getpid()), g_stats.start_ns(), g.page_size);
    if (r < 0) {
      LineWriter w;
      w.str("uffdlazy: cannot write the trace ").str(g.cfg.trace).str(": ").errno_text(-r);
      if (out >= 0) w.emit(out);
    }
  }
}

}  // namespace uffdlazy::pager
