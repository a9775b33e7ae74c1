// Taking a snapshot of the registered regions (UFFDLAZY_RECORD), at the configured moment.
//
// Several processes of a run may be recording (a wrapper and the program it runs both load the
// shim): the plain file name holds the capture of the process with the most registered memory
// at its capture moment (run_state.h); a name with %p gets one file per process.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/wait.h>

#include <atomic>

#include "core/base/line_writer.h"
#include "core/pager/output_names.h"
#include "core/pager/pager_state.h"
#include "core/pager/snapshot_capture.h"

namespace uffdlazy::pager {

namespace {

// Captures started and not yet counted (a futex word: at_exit waits on it), and the process they
// belong to: a child forked meanwhile inherits the count but not the thread that would lower it.
constinit std::atomic<uint32_t> g_captures_under_way{0};
constinit std::atomic<int> g_capturing_pid{0};

void capture_and_count();

int64_t registered_bytes() {
  TableSection section;
  int64_t total = 0;
  const RegionList& live = g.table.live();
  for (size_t i = 0; i < live.size(); i++) total += int64_t(live.at(i).length());
  return total;
}

}  // namespace

void wait_for_capture_under_way() {
  if (g_capturing_pid.load(std::memory_order_acquire) != sys::getpid()) return;
  for (uint32_t n; (n = g_captures_under_way.load(std::memory_order_acquire)) != 0;)
    sys::futex(&g_captures_under_way, FUTEX_WAIT_PRIVATE, int(n));
}

void capture_now() {
  g_capturing_pid.store(sys::getpid(), std::memory_order_release);
  g_captures_under_way.fetch_add(1, std::memory_order_acq_rel);
  capture_and_count();
  if (g_captures_under_way.fetch_sub(1, std::memory_order_acq_rel) == 1)
    sys::futex(&g_captures_under_way, FUTEX_WAKE_PRIVATE, INT32_MAX);
}

namespace {

void capture_and_count() {
  // Events the monitor has read but not yet applied (a region unmapped just before the capture
  // moment) must be in the table the capture copies.
  if (mine()) g.monitor.sync();
  char path[Config::kPathMax + 24];
  if (!expand_name(g.cfg.record, sys::getpid(), path, sizeof path)) return;
  const bool shared_name = !per_process_name(g.cfg.record);
  const int64_t mine = registered_bytes();
  const uint32_t pid = uint32_t(sys::getpid());
  bool smaller = false;
  if (shared_name) {
    g.run.update([&](RunShared& r) {
      // Another process of the run recorded more memory under this name: keep its snapshot.
      smaller = r.snapshot_bytes > mine && r.snapshot_pid != pid;
    });
  }
  if (smaller) return;

  CaptureInput in;
  in.table = &g.table;
  in.table_lock = &g.lock;
  in.sites = g_sites.get();
  in.restore = g_restore ? g_restore.get() : nullptr;
  in.page_size = g.page_size;
  in.no_aslr = g.cfg.no_aslr;
  in.message_fd = exit_line_fd() >= 0 ? exit_line_fd() : 2;
  long child = start_capture(path, in);
  int status = child < 0 ? int(child) : wait_capture(child);
  const bool ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    LineWriter w;
    w.str("uffdlazy: snapshot ").str(path).str(": ");
    if (child < 0) {
      w.str("cannot start the capture: ").errno_text(int(-child));
    } else if (status < 0) {
      w.str("lost track of the capture: ").errno_text(-status);
    } else if (WIFSIGNALED(status)) {
      w.str("the capture process was killed by signal ").i64(WTERMSIG(status)).str("; nothing written");
      // Its temporary file stays behind: the writer names it after its own pid.
      char tmp[sizeof path + 32];
      LineWriter name;
      name.str(path).str(".tmp.").i64(child);
      if (name.size() < sizeof tmp) {
        for (size_t i = 0; i < name.size(); i++) tmp[i] = name.data()[i];
        tmp[name.size()] = 0;
        sys::unlinkat(AT_FDCWD, tmp, 0);
      }
    }
    if (child < 0 || status < 0 || WIFSIGNALED(status)) w.emit(in.message_fd);  // else the child said why
    g.captures_failed++;
    g.run.update([](RunShared& r) { r.captures_failed++; });
    return;
  }
  g.captures_written++;
  g.run.update([&](RunShared& r) {
    r.captures_ok++;
    if (shared_name) {
      r.snapshot_bytes = mine;
      r.snapshot_pid = pid;
    }
  });
}

}  // namespace

}  // namespace uffdlazy::pager
