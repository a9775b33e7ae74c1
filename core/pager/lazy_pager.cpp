#include "core/pager/lazy_pager.h"

#include <atomic>
#include <cstring>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/base/aside_mmap.h"
#include "core/base/env_config.h"
#include "core/base/line_writer.h"
#include "core/base/raw_syscall.h"
#include "core/base/spin_lock.h"
#include "core/monitor/monitor.h"
#include "core/monitor/region_table.h"
#include "core/uffd/userfaultfd.h"
#include "core/base/immortal.h"
#include "core/pager/call_site_table.h"
#include "core/pager/capture_trigger.h"
#include "core/pager/exit_summary.h"
#include "core/pager/snapshot_capture.h"
#include "core/pager/snapshot_restore.h"
#include "core/latency/fault_stats.h"
#include "core/latency/fault_trace.h"
#include "core/latency/json_report_writer.h"
#include "core/latency/latency_observer.h"
#include "core/latency/mono_clock.h"

namespace uffdlazy::pager {

namespace {

constexpr size_t kLiveRegions = 1 << 16;
constexpr size_t kLimboRegions = 1 << 10;

struct PagerState {
  Config cfg;
  Userfaultfd uffd;
  RegionTable table;
  SpinLock lock;
  Monitor monitor;
  MonitorCounters counters;
  uint64_t page_size = 4096;
  long owner_pid = 0;
  int summary_fd = 2;  // a private copy of stderr: programs may close fd 2 before exit
  uint64_t stderr_dev = 0, stderr_ino = 0;  // what it was, to notice if the number was reused
  std::atomic<bool> active{false};
  bool forked = false;  // a child of fork(): serves its memory, owns none of the parent's outputs
};

constinit PagerState g;
// The latency account: fixed size, zero-initialised, written by the monitor thread only.
constinit FaultStats g_stats;
constinit FaultTrace g_trace;
constinit LatencyObserver g_observer{&g_stats, nullptr, 0};
// Snapshot restore and record: only constructed when asked for.
constinit Immortal<CallSiteTable> g_sites;
constinit Immortal<SnapshotRestore> g_restore;
constinit CaptureMoment g_capture_at;

// Holds the table lock with every signal blocked, so a signal handler that touches lazy memory
// can never run on a thread that holds what the monitor needs.
class TableSection {
 public:
  TableSection() {
    touch_stack();
    sigset_t all;
    sigfillset(&all);
    sys::sigprocmask(SIG_SETMASK, &all, &saved_);
    g.lock.lock();
  }
  ~TableSection() {
    g.lock.unlock();
    sys::sigprocmask(SIG_SETMASK, &saved_, nullptr);
  }

 private:
  // The caller's stack could itself be lazily paged (a coroutine stack from mmap): fault it in
  // before taking the lock, never while holding it.
  static void __attribute__((noinline)) touch_stack() {
    volatile char probe[2 * 4096];
    probe[0] = 0;
    probe[4096] = 0;
    probe[sizeof probe - 1] = 0;
  }
  sigset_t saved_;
};

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) & ~(to - 1); }

bool mine() { return g.active.load(std::memory_order_acquire) && sys::getpid() == g.owner_pid; }

bool wants(size_t len, int flags) {
  if (!(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE) return false;
  if (flags & (MAP_HUGETLB | MAP_GROWSDOWN)) return false;
  return len >= g.cfg.min_size;
}

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
    w.str("); ").str(g.cfg.snapshot[0] ? "a restore needs it" : g.cfg.record[0] ? "recording needs it" : "UFFDLAZY_STRICT=1")
        .str(", so exiting");
    w.emit();
    sys::exit_group(3);
  }
  w.str("); running without lazy paging");
  w.emit();
}

// Opens the uffd and starts the monitor; false (with the line printed) if that cannot be done.
bool bring_up() {
  UffdOpenFailure why;
  if (!g.uffd.open(g.cfg.user_mode_only, &why)) {
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
  setup.fault_around_pages = uint32_t(g.cfg.fault_around);
  setup.observer = &g_observer;
  setup.cpu = g.cfg.monitor_cpu;
  setup.spin_ns = g.cfg.spin_us * 1000;
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
  return true;
}

void scrub_environment(char** envp) {
  static const char* const kOnlyForThisProgram[] = {"UFFDLAZY_SNAPSHOT=", "UFFDLAZY_RECORD=", "UFFDLAZY_RECORD_AT=",
                                                     "UFFDLAZY_NO_ASLR=", "UFFDLAZY_VERIFY=", "UFFDLAZY_REPORT=",
                                                     "UFFDLAZY_TRACE="};
  char** out = envp;
  for (char** e = envp; e && *e; e++) {
    bool drop = false;
    for (const char* prefix : kOnlyForThisProgram) drop |= strncmp(*e, prefix, strlen(prefix)) == 0;
    if (!drop) *out++ = *e;
  }
  if (out) *out = nullptr;
}

int exit_line_fd();

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

}  // namespace

void start(char** envp) {
  LineWriter err;
  if (!parse_config(envp, &g.cfg, &err)) {
    LineWriter w;
    w.str("uffdlazy: ").str(err.data(), err.size());
    w.emit();
    sys::exit_group(2);
  }
  if (g.cfg.disabled) return;
  // A restore or a recording is for this program only, not for programs it runs.
  scrub_environment(envp);
  if (!parse_capture_moment(g.cfg.record_at, &g_capture_at, &err)) {
    LineWriter w;
    w.str("uffdlazy: UFFDLAZY_RECORD_AT: ").str(err.data(), err.size());
    w.emit();
    sys::exit_group(2);
  }
  // Serving zeros where a snapshot holds data would be a silently wrong page: no failing open.
  if (g.cfg.snapshot[0] || g.cfg.record[0]) g.cfg.strict = true;
  g.owner_pid = sys::getpid();
  if (g.cfg.stats || g.cfg.report[0] || g.cfg.trace[0] || g.cfg.snapshot[0] || g.cfg.record[0]) {
    // GNU coreutils, among others, close stderr in an atexit handler, before our destructor.
    long fd = sys::call6(SYS_fcntl, 2, F_DUPFD_CLOEXEC, 100);
    struct stat st;
    if (fd >= 0 && sys::fstat(int(fd), &st) == 0) {
      g.summary_fd = int(fd);
      g.stderr_dev = st.st_dev;
      g.stderr_ino = st.st_ino;
    }
  }
  g.page_size = getauxval(AT_PAGESZ);
  if (g.cfg.min_size < g.page_size) g.cfg.min_size = g.page_size;
  if (!g.table.init(kLiveRegions, kLimboRegions, g.page_size)) {
    LineWriter w;
    w.str("uffdlazy: cannot map the region table; running without lazy paging");
    w.emit();
    return;
  }
  if (g.cfg.no_aslr) set_mappings_aside(true);
  if (g.cfg.snapshot[0] || g.cfg.record[0]) {
    if (g_sites.construct()->init() < 0) {
      LineWriter w;
      w.str("uffdlazy: cannot map memory for call-site identities; exiting");
      w.emit();
      sys::exit_group(3);
    }
  }
  if (g.cfg.snapshot[0]) {
    LineWriter problem;
    if (!g_restore.construct()->open(g.cfg.snapshot, strcmp(g.cfg.verify, "none") != 0, &problem)) {
      LineWriter w;
      w.str("uffdlazy: ").str(g.cfg.snapshot).str(": ").str(problem.data(), problem.size());
      w.emit();
      sys::exit_group(2);
    }
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
  if (bring_up() && g.cfg.record[0] && !arm_capture(g_capture_at, capture_now)) {
    LineWriter w;
    w.str("uffdlazy: cannot arm the snapshot capture (").str(g.cfg.record_at).str("); exiting");
    w.emit();
    sys::exit_group(3);
  }
}

bool active() { return g.active.load(std::memory_order_acquire) && !g.monitor.failed(); }

void mapped(void* addr, size_t len, int prot, int flags, int fd, const void* caller) {
  (void)fd;
  if (!mine()) return;
  uintptr_t s = reinterpret_cast<uintptr_t>(addr);
  uintptr_t e = s + round_up(len, g.page_size);
  const bool want = wants(len, flags) && !g.monitor.failed();
  // Identity (recording or restoring only): which call site made this mapping, and the how-many-th.
  uint64_t site = 0;
  uint32_t ordinal = 0;
  int32_t source = Region::kZeroSource;
  if (want && g_sites) {
    SiteId id = g_sites->record(caller, &ordinal);
    site = CallSiteTable::pack(id);
    if (g_restore && g_restore->ready()) source = g_restore->match(s, len, prot, flags, id, ordinal, *g_sites.get());
  }
  bool inserted = false;
  uint32_t id = 0;
  {
    TableSection section;
    g.table.mapped(s, e);
    if (want) {
      Region r = {};
      r.start = s;
      r.end = e;
      r.source = source;
      r.source_page = 0;
      r.prot = prot;
      r.flags = flags;
      r.site = site;
      r.ordinal = ordinal;
      r.alloc_length = len;
      r.id = g.table.next_id();
      id = r.id;
      inserted = g.table.insert(r);
    }
  }
  if (!inserted) return;
  // Registered after the table knows the region, so the first fault always finds it.
  if (g.uffd.register_missing(s, e - s) < 0) {
    TableSection section;
    g.table.forget(s, e);
    g.counters.refused.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g.counters.regions.fetch_add(1, std::memory_order_relaxed);
  g_stats.region_registered(id, s, e - s, (prot & (PROT_READ | PROT_WRITE)) ? "anonymous" : "anonymous reservation");
}

void remapped(void* old_addr, size_t old_len, void* new_addr, size_t new_len, int flags) {
  (void)flags;
  if (!mine()) return;
  // A move is reported by the kernel (REMAP + UNMAP); growing in place is not, and the grown part
  // is registered with the rest of the VMA.
  if (new_addr == old_addr && new_len > old_len) {
    uintptr_t s = reinterpret_cast<uintptr_t>(old_addr);
    TableSection section;
    g.table.grew(s, s + round_up(old_len, g.page_size), s + round_up(new_len, g.page_size));
  }
}

void unmapped(void*, size_t) {}
void advised(void*, size_t, int) {}

void before_fork() {
  if (!mine()) return;
  // The child's copy of our regions is not registered: it must get every owed page now.
  g.monitor.fill_all_owed();
}

void after_fork_parent() {
  if (!mine()) return;
  g.counters.fork.fetch_add(1, std::memory_order_relaxed);
}

void after_fork_child() {
  if (!g.active.load(std::memory_order_acquire)) return;
  // The child has one thread and none of the parent's registrations. The inherited uffd and
  // eventfd belong to the parent's monitor: drop our references and start over.
  g.active.store(false, std::memory_order_release);
  g.lock.reset_after_fork();
  g.table.clear();
  g.counters.reset();
  g_stats.reset();
  g_stats.start(mono_now_ns());
  g_trace.clear();
  g.uffd.close();
  g.monitor.forget_after_fork();
  if (g_sites) g_sites->reset_after_fork();
  // The snapshot, report and trace files are the parent's: a child must not overwrite them, nor
  // report the parent's restore as its own. A capture signal is the parent's business too.
  g.cfg.record[0] = 0;
  g.cfg.report[0] = 0;
  g.cfg.trace[0] = 0;
  g.forked = true;
  if (g_capture_at.kind == CaptureMoment::kSignal) {
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigaction(g_capture_at.signal, &dfl, nullptr);
  }
  g.owner_pid = sys::getpid();
  bring_up();
}

namespace {

// The fd our exit lines go to, or -1: a program that closed every fd may have reused the number
// of our stderr copy for a file of its own, and our line must never land in its data.
int exit_line_fd() {
  struct stat st;
  for (int fd : {g.summary_fd, 2}) {
    if (sys::fstat(fd, &st) == 0 && st.st_dev == g.stderr_dev && st.st_ino == g.stderr_ino) return fd;
  }
  return -1;
}

}  // namespace

void at_exit() {
  if (g.cfg.disabled || !g.owner_pid || sys::getpid() != g.owner_pid) return;
  if (g.cfg.record[0] && g_capture_at.kind == CaptureMoment::kExit && mine()) capture_now();
  if (!g.cfg.stats && !g.cfg.report[0] && !g.cfg.trace[0] && !g.cfg.snapshot[0]) return;
  const int out = exit_line_fd();
  if (mine()) g.monitor.sync();
  if (g_restore && g_restore->ready() && out >= 0 && !g.forked) g_restore->write_account(g.cfg.snapshot, out);
  if (g.cfg.stats && out >= 0) {
    write_exit_summary(g.counters, g_stats, g.active.load(std::memory_order_acquire), g.uffd.origin(), out);
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
