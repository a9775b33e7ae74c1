// An adversarial, randomized, multi-threaded target for the shim. Each thread owns blocks of
// private anonymous memory and a shadow of what every page must hold, and applies seeded random
// mapping operations to them (see operations.cpp for the catalogue and worker.cpp for what each
// does), checking each page it changed after every step and every page at the end.
//
//   mapping_stress [--seed N] [--threads 1..1000] [--steps N] [--ops all|FAMILY,...] [--only OP,...]
//                  [--pages N] [--blocks N] [--close-range[=old-memory|=new-memory]] [--watchdog SECONDS]
//                  [--watchdog-core] [--persist] [--dir PATH]
//
// stdout is deterministic for a given command line (a run with and without the shim must print
// the same bytes) except the one line that starts with "nondet ", which holds counts that depend
// on timing and placement. The last line is "mismatches=N" (wrong pages, failed calls, failed
// children, damaged files). Exit status: 0 when N == 0, 1 otherwise, 2 for a usage error,
// 124 when the watchdog found a hang (it then prints, on stderr, what every stalled thread was
// doing; with --watchdog-core it aborts instead, for a core dump of the hung process). stderr
// starts with "mapping_stress: pid=N" so the shim's summary line can be told from those of the
// children it spawns. --persist adds a region meant for `uffdlazy record` / `restore` (persist.h).
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "tests/stress/child_checks.h"
#include "tests/stress/operations.h"
#include "tests/stress/page_pattern.h"
#include "tests/stress/persist.h"
#include "tests/stress/shared_regions.h"
#include "tests/stress/signal_handlers.h"
#include "tests/stress/watchdog.h"
#include "tests/stress/worker.h"

using namespace stress;

namespace {

constexpr int kMaxThreads = 1000;
constexpr size_t kSmallStack = 64 * 1024;
std::atomic<int> g_go{0};
// Threads stay alive (signals blocked) until every thread is done, since any of them may still
// pthread_kill any other: a joined thread's handle is gone.
std::atomic<int> g_done{0};
std::atomic<int> g_release{0};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "mapping_stress: %s\n"
               "usage: mapping_stress [--seed N] [--threads 1..%d] [--steps N] [--ops all|FAMILY,...] [--only OP,...]\n"
               "                      [--pages N] [--blocks N] [--close-range[=old-memory|=new-memory]]\n"
               "                      [--watchdog SECONDS]\n"
               "                      [--watchdog-core] [--persist] [--dir PATH]\n"
               "families: touch map prot advise remap multivma io fork signal smallstacks lazystacks shared\n",
               problem.c_str(), kMaxThreads);
  std::exit(2);
}

uint64_t number(const char* flag, const char* text, uint64_t lo, uint64_t hi) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || !end || *end || v < lo || v > hi) {
    usage(std::string(flag) + " wants a number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" +
          text + "'");
  }
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) o.dir = tmp;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--seed") {
      o.seed = number("--seed", value(), 0, UINT64_MAX);
    } else if (a == "--threads") {
      o.threads = int(number("--threads", value(), 1, kMaxThreads));
    } else if (a == "--steps") {
      o.steps = int(number("--steps", value(), 0, 100000000));
    } else if (a == "--ops") {
      std::string error;
      if (!parse_families(value(), &o.families, &error)) usage(error);
    } else if (a == "--only") {
      // Narrows a failure down: only these operations are chosen (others still run as fallbacks).
      std::stringstream in(value());
      std::string name;
      while (std::getline(in, name, ',')) {
        int found = -1;
        for (int k = 0; k < kOpCount; k++)
          if (name == op_info(Op(k)).name) found = k;
        if (found < 0) usage("--only: unknown operation '" + name + "'");
        o.only_ops |= uint64_t(1) << found;
      }
    } else if (a == "--pages") {
      o.page_budget = number("--pages", value(), 1, 1 << 20);
    } else if (a == "--blocks") {
      o.max_blocks = number("--blocks", value(), 1, 64);
    } else if (a == "--close-range" || a == "--close-range=old-memory") {
      o.close_range = Options::CloseRange::kOldMemory;
    } else if (a == "--close-range=new-memory") {
      o.close_range = Options::CloseRange::kNewMemory;
    } else if (a == "--watchdog") {
      o.watchdog_seconds = int(number("--watchdog", value(), 1, 86400));
    } else if (a == "--persist") {
      o.persist = true;
    } else if (a == "--watchdog-core") {
      o.watchdog_core = true;
    } else if (a == "--dir") {
      o.dir = value();
    } else {
      usage("unknown argument '" + a + "'");
    }
  }
  return o;
}

void* thread_main(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  w.tid.store(int(gettid()));
  g_go.wait(0);
  w.progress_ns.store(now_ns());
  w.state.store(int(RunState::kRunning));
  w.io_page = static_cast<char*>(std::aligned_alloc(kPage, kPage));
  if (!prepare_thread_for_signals(w) || !w.io_page) {
    g_problems.failed_calls.fetch_add(1);
    report("failed call: thread %d: cannot map its signal arena", w.id);
  }
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
  run_worker(w);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  finish_thread_signals(w);
  std::free(w.io_page);
  w.io_page = nullptr;
  w.state.store(int(RunState::kDone));
  g_done.fetch_add(1);
  g_done.notify_all();
  g_release.wait(0);
  return nullptr;
}

bool create_thread(Worker& w, const Options& opt) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if ((opt.families & kFamSmallStacks) && w.id % 3 == 1) pthread_attr_setstacksize(&attr, kSmallStack);
  if ((opt.families & kFamLazyStacks) && w.id % 3 == 2) {
    // A stack from the program's own mmap: the shim pages it lazily, signal frames included.
    size_t bytes = kSmallStack + kPage;
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) return false;
    mprotect(m, kPage, PROT_NONE);  // guard page
    w.own_stack = static_cast<char*>(m);
    w.own_stack_bytes = bytes;
    pthread_attr_setstack(&attr, w.own_stack + kPage, kSmallStack);
  }
  int rc = pthread_create(&w.thread, &attr, thread_main, &w);
  pthread_attr_destroy(&attr);
  if (rc != 0) errno = rc;
  return rc == 0;
}

void print_summary(const Options& opt) {
  Counts total;
  Nondet nd;
  uint64_t handled = 0, handler_mmaps = 0;
  for (int i = 0; i < g_worker_count; i++) {
    const Worker& w = g_workers[i];
    for (int k = 0; k < kOpCount; k++) total.ops[k] += w.counts.ops[k];
    total.pages_written += w.counts.pages_written;
    total.pages_verified += w.counts.pages_verified;
    nd.grow_in_place_moved += w.nd.grow_in_place_moved;
    nd.grow_maymove_moved += w.nd.grow_maymove_moved;
    nd.free_reclaimed += w.nd.free_reclaimed;
    nd.free_kept += w.nd.free_kept;
    nd.collapse_ok += w.nd.collapse_ok;
    nd.collapse_refused += w.nd.collapse_refused;
    nd.shared_zero_seen += w.nd.shared_zero_seen;
    nd.shared_torn_seen += w.nd.shared_torn_seen;
    handled += w.handler.handled;
    handler_mmaps += w.handler.mmaps;
  }
  const char* close_range = opt.close_range == Options::CloseRange::kNo          ? "no"
                            : opt.close_range == Options::CloseRange::kOldMemory ? "old-memory"
                                                                                 : "new-memory";
  std::printf("mapping_stress seed=%llu threads=%d steps=%d ops=%s pages=%zu blocks=%zu close_range=%s persist=%d\n",
              (unsigned long long)opt.seed, opt.threads, opt.steps, families_text(opt.families).c_str(),
              opt.page_budget, opt.max_blocks, close_range, opt.persist ? 1 : 0);
  if (opt.only_ops) {
    std::printf("only");
    for (int k = 0; k < kOpCount; k++)
      if ((opt.only_ops >> k) & 1) std::printf(" %s", op_info(Op(k)).name);
    std::printf("\n");
  }
  uint64_t all = 0;
  for (uint32_t fam = kFamTouch; fam & kAllFamilies; fam <<= 1) {
    bool has_ops = false;
    for (int k = 0; k < kOpCount; k++) has_ops |= op_info(Op(k)).family == fam;
    if (!has_ops) continue;
    std::printf("ops.%s", family_name(fam));
    for (int k = 0; k < kOpCount; k++) {
      if (op_info(Op(k)).family != fam) continue;
      std::printf(" %s=%llu", op_info(Op(k)).name, (unsigned long long)total.ops[k]);
      all += total.ops[k];
    }
    std::printf("\n");
  }
  std::printf("total_ops=%llu pages_written=%llu pages_verified=%llu\n", (unsigned long long)all,
              (unsigned long long)total.pages_written, (unsigned long long)total.pages_verified);
  std::printf("nondet grow_in_place_moved=%llu grow_maymove_moved=%llu free_reclaimed=%llu free_kept=%llu "
              "collapse_ok=%llu collapse_refused=%llu signals_handled=%llu handler_mmaps=%llu shared_zero_seen=%llu "
              "shared_torn_seen=%llu\n",
              (unsigned long long)nd.grow_in_place_moved, (unsigned long long)nd.grow_maymove_moved,
              (unsigned long long)nd.free_reclaimed, (unsigned long long)nd.free_kept,
              (unsigned long long)nd.collapse_ok, (unsigned long long)nd.collapse_refused,
              (unsigned long long)handled, (unsigned long long)handler_mmaps, (unsigned long long)nd.shared_zero_seen,
              (unsigned long long)nd.shared_torn_seen);
  long wrong = g_problems.wrong_pages.load(), calls = g_problems.failed_calls.load();
  long children = g_problems.child_failures.load(), files = g_problems.file_errors.load();
  std::printf("wrong_pages=%ld failed_calls=%ld child_failures=%ld file_errors=%ld\n", wrong, calls, children, files);
  std::printf("mismatches=%ld\n", wrong + calls + children + files);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--child-selftest") == 0) {
    return child_selftest(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1);
  }
  static Options opt = parse(argc, argv);
  // A file per thread plus pipes: more descriptors than the default soft limit allows.
  rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // SIGUSR1 only ever runs on a worker (each unblocks it once it is ready).
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  install_signal_handlers();
  std::fprintf(stderr, "mapping_stress: pid=%d\n", int(getpid()));
  static MainProgress progress;
  progress.tid.store(int(gettid()));
  // First of all the program's mappings, so that a restore matches it by call site and ordinal.
  if (opt.persist) {
    if (!set_up_persistent_region(opt.seed, opt.threads)) {
      std::fprintf(stderr, "mapping_stress: cannot set up the persistent region\n");
      return 1;
    }
    std::fprintf(stderr, "mapping_stress: persistent region of %zu pages %s\n", g_persist.pages,
                 g_persist.restored ? "restored" : "written");
  }
  g_workers = new Worker[size_t(opt.threads)];
  g_worker_count = opt.threads;
  if ((opt.families & kFamShared) && !set_up_shared_regions(opt.threads, opt.seed)) {
    std::fprintf(stderr, "mapping_stress: cannot map the shared regions\n");
    return 1;
  }
  if (opt.close_range != Options::CloseRange::kNo) {
    // Like a program that runs a while, then closes every descriptor it did not open itself (the
    // shim's among them) and opens files of its own. With old-memory each thread starts with a
    // block mapped, and partly touched, before the close: its other pages are first touched after.
    for (int i = 0; opt.close_range == Options::CloseRange::kOldMemory && i < opt.threads; i++) {
      void* m = mmap(nullptr, kPreClosePages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) {
        std::perror("mapping_stress: mmap");
        return 2;
      }
      g_workers[i].pre_close_block = static_cast<char*>(m);
      fill_page(m, kPage, make_tag(uint32_t(i), 0));
    }
    // Idle a moment first, as such a program would: the shim's monitor is then asleep.
    timespec idle = {0, 20 * 1000 * 1000};
    nanosleep(&idle, nullptr);
    if (close_range(3, ~0U, 0) != 0) {
      std::perror("mapping_stress: close_range");
      return 2;
    }
  }
  if (!start_watchdog(opt, &progress)) {
    std::fprintf(stderr, "mapping_stress: cannot start the watchdog\n");
    return 2;
  }
  progress.enter("creating threads");
  for (int i = 0; i < opt.threads; i++) {
    Worker& w = g_workers[i];
    w.id = i;
    w.opt = &opt;
    w.persist_first = size_t(i) * kPersistPagesPerThread;
    // Independent streams: the seed and the thread number mixed, not a shifted copy of one stream.
    Rng mix{opt.seed ^ (uint64_t(i) << 32)};
    mix.next();
    w.rng.s = mix.next() ^ uint64_t(i);
    if (!create_thread(w, opt)) {
      std::fprintf(stderr, "mapping_stress: cannot create thread %d: %s\n", i, std::strerror(errno));
      _exit(2);
    }
  }
  progress.enter("running");
  g_go.store(1);
  g_go.notify_all();
  for (int done = g_done.load(); done < opt.threads; done = g_done.load()) g_done.wait(done);
  progress.enter("checking the shared regions");
  if (g_shared) g_problems.wrong_pages.fetch_add(tear_down_shared_regions());
  g_release.store(1);
  g_release.notify_all();
  for (int i = 0; i < opt.threads; i++) {
    pthread_join(g_workers[i].thread, nullptr);
    if (g_workers[i].own_stack) munmap(g_workers[i].own_stack, g_workers[i].own_stack_bytes);
  }
  progress.enter("printing the summary");
  print_summary(opt);
  long mismatches = g_problems.wrong_pages.load() + g_problems.failed_calls.load() +
                    g_problems.child_failures.load() + g_problems.file_errors.load();
  // Exit handlers (the shim's summary among them) run under the watchdog too.
  progress.enter("exiting");
  return mismatches ? 1 : 0;
}
