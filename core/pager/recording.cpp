// Taking a snapshot of the registered regions (UFFDLAZY_RECORD), at the configured moment.
#include "core/base/line_writer.h"
#include "core/pager/pager_state.h"
#include "core/pager/snapshot_capture.h"

namespace uffdlazy::pager {

void capture_now() {
  CaptureInput in;
  in.table = &g.table;
  in.table_lock = &g.lock;
  in.sites = g_sites.get();
  in.restore = g_restore ? g_restore.get() : nullptr;
  in.page_size = g.page_size;
  in.no_aslr = g.cfg.no_aslr;
  in.message_fd = exit_line_fd() >= 0 ? exit_line_fd() : 2;
  long pid = start_capture(g.cfg.record, in);
  if (pid < 0) {
    LineWriter w;
    w.str("uffdlazy: snapshot ").str(g.cfg.record).str(": cannot start the capture: ").errno_text(int(-pid));
    w.emit(in.message_fd);
    return;
  }
  wait_capture(pid);
}

}  // namespace uffdlazy::pager
