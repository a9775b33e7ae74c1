#include "core/pager/exit_summary.h"

#include "core/base/line_writer.h"
#include "core/base/raw_syscall.h"
#include "core/latency/stats_line.h"
#include "uffdlazy/version.h"

#include <sys/prctl.h>

namespace uffdlazy {

namespace {

// The calling thread's name (the process's, as ps shows it, unless the thread renamed itself),
// as one word: blanks and controls become '_'.
void append_comm(LineWriter* w) {
  char name[17] = {};
  if (sys::call6(SYS_prctl, PR_GET_NAME, reinterpret_cast<long>(name)) < 0 || !name[0]) {
    w->ch('?');
    return;
  }
  for (char* p = name; *p; p++) {
    if (static_cast<unsigned char>(*p) <= ' ' || *p == 0x7f) *p = '_';
  }
  w->str(name);
}

}  // namespace

void write_exit_summary(const MonitorCounters& c, const FaultStats& stats, bool active, UffdOrigin origin,
                        const char* interception, int64_t seen_permille, bool program, int fd) {
  auto v = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  LineWriter w;
  w.str("uffdlazy: pid=").i64(sys::getpid());
  w.str(" comm=");
  append_comm(&w);
  if (program) w.str(" program");
  // faults = pages served (what the program was given); requests = fault messages answered.
  w.str(" faults=").u64(v(c.pages_zero) + v(c.pages_data));
  w.str(" requests=").u64(v(c.faults));
  w.str(" regions=").u64(v(c.regions));
  w.str(" remove=").u64(v(c.remove));
  w.str(" unmap=").u64(v(c.unmap));
  w.str(" remap=").u64(v(c.remap));
  w.str(" fork=").u64(v(c.fork));
  w.str(" zero_pages=").u64(v(c.pages_zero));
  w.str(" data_pages=").u64(v(c.pages_data));
  w.str(" already_present=").u64(v(c.already_present));
  w.str(" gone=").u64(v(c.gone));
  // Snapshot restores: pages installed ahead of the faulting page (part of faults=), and by the
  // background fill before anything asked for them (not part of faults=).
  w.str(" readahead=").u64(v(c.readahead));
  w.str(" prefetched=").u64(v(c.prefetched));
  if (v(c.refused)) w.str(" refused=").u64(v(c.refused));
  if (v(c.requeued)) w.str(" requeued=").u64(v(c.requeued));
  if (v(c.unregistered)) w.str(" unregistered=").u64(v(c.unregistered));
  if (v(c.aside)) w.str(" aside=").u64(v(c.aside));
  const LatencyHistogram& h = stats.overall();
  if (h.count()) {
    // Time from the monitor reading a fault to the page in place and the thread woken.
    w.str(" p50=");
    append_us(&w, h.value_at_percentile_milli(50000));
    w.str(" p99=");
    append_us(&w, h.value_at_percentile_milli(99000));
    w.str(" max=");
    append_us(&w, h.max());
  }
  w.str(active ? " uffd=" : " inactive uffd=").str(origin_name(origin));
  w.str(" intercept=").str(interception);
  if (seen_permille >= 0) w.str(" seen=").fixed(uint64_t(seen_permille), 1).ch('%');
  w.str(" version=").str(UFFDLAZY_VERSION);
  if (UFFDLAZY_GIT_COMMIT[0]) w.ch('+').str(UFFDLAZY_GIT_COMMIT);
  w.emit(fd);
}

}  // namespace uffdlazy
