// The monitor: a hidden thread that owns the userfaultfd, reads faults and events in batches and
// answers every fault (FaultPolicy decides with what), keeping the region table in step with the
// kernel's events.
//
// It must never wait on anything a faulting thread may hold: it allocates nothing after init(),
// uses no stdio and no libc locks, blocks every signal, and touches only its own memory (never a
// registered range). Before it is started, everything it needs is preallocated.
//
// Descriptors: the monitor works on a file descriptor table of its own (it unshares the process's
// table when it starts and keeps only the userfaultfd). A program may close every descriptor it
// has (close_range, closefrom) and reuse the numbers: the monitor never reads or writes the
// program's files, and keeps serving. Program threads that need the monitor's attention (sync at
// exit, stop) ring a doorbell: MADV_DONTNEED on a page the shim registered for that purpose makes
// the kernel queue a REMOVE event, which needs no descriptor at all.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <linux/userfaultfd.h>

#include "core/base/hidden_thread.h"
#include "core/base/spin_lock.h"
#include "core/monitor/copy_helper.h"
#include "core/monitor/background_fill.h"
#include "core/monitor/fault_policy.h"
#include "core/monitor/fault_queue.h"
#include "core/monitor/monitor_counters.h"
#include "core/monitor/page_source.h"
#include "core/monitor/region_table.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {

class FaultObserver;

class Monitor final : private FillHost {
 public:
  struct Setup {
    Userfaultfd* uffd = nullptr;
    RegionTable* table = nullptr;
    SpinLock* table_lock = nullptr;
    PageSource* source = nullptr;        // null: every page is zero-filled
    MonitorCounters* counters = nullptr;
    FaultObserver* observer = nullptr;   // optional: per-fault timing
    uint64_t page_size = 4096;
    // Zero-filled faults install this many pages at once (see FaultPolicy).
    uint32_t fault_around_pages = 1;
    // Pin the monitor to this CPU (-1: let the scheduler place it). A fault round trip between
    // two vCPUs costs several times one on a single vCPU, so a latency-sensitive single-threaded
    // target does best with itself and the monitor on one CPU (taskset plus this).
    int cpu = -1;
    // After answering faults, keep polling this long for the next one before sleeping (yielding
    // the CPU between polls, so a woken thread that shares it runs at once).
    uint64_t spin_ns = 0;
    // A snapshot fault installs up to this many owed pages (see FaultPolicy); 1: one per fault.
    uint32_t readahead_pages = 1;
    // What the monitor installs while no fault waits (see BackgroundFill).
    PrefetchMode prefetch = PrefetchMode::kNone;
    const SourceRun* working_set = nullptr;  // the recorded working set to replay first
    size_t working_set_runs = 0;
    TouchLog* touches = nullptr;             // told each owed page a fault served (recording one)
    // Threads that copy long runs of snapshot pages (see CopyHelper): 1 or 2. The second is
    // started only with a source and when the process may run on more than one CPU.
    uint32_t copy_threads = 2;
  };
  static constexpr uint32_t kMaxFaultAround = 512;
  // Distinct pages with a fault waiting for its answer (see FaultQueue).
  static constexpr size_t kQueueCapacity = 8192;

  // Maps everything the loop needs and registers the doorbell page with the userfaultfd.
  bool init(const Setup& setup);
  // Spawns the thread (again, after stop()). False if it could not be created. Once it returns the
  // thread runs on a descriptor table of its own: the program may close any descriptor.
  bool start();
  // The monitor thread's id while it runs (0 otherwise).
  long thread_id() const { return thread_.tid(); }
  // The monitor cannot go on (or, stopped, could not be started again): with snapshot pages still
  // owed the process is stopped with a message (they would read as zeros); otherwise every range
  // is unregistered (faults then read zeros, the right content) and failed() turns true. From any
  // thread that has the userfaultfd in its descriptor table.
  void give_up(const char* what, int err);
  // Stops and joins the thread (and the copy helper). Everything else stays: the userfaultfd, its
  // registrations and the region table, so start() may bring up a new thread that carries on
  // (faults that arrive meanwhile wait in the kernel's queue). Tests, and the pager's stepping
  // aside for a system call that needs a single-threaded process.
  void stop();

  // Called from a target thread before fork(): returns once every page the source still owes is
  // in place, so the child (whose memory is not registered) sees the parent's exact contents.
  void fill_all_owed();

  // Called from a target thread that has just registered a region restored from snapshot region
  // `source`: the background fill starts over (a new region has owed pages). If the working set
  // names pages of that region, returns once they are in place, so the program starts with its
  // working set already there instead of racing the replay page by page.
  void region_restored(int32_t source);

  // Returns once the monitor has finished answering every fault it had read when called, so that
  // counts taken afterwards include the caller's own faults (the monitor wakes a thread before
  // it books the fault). Used at exit.
  void sync();

  // Called from a target thread just before a call that makes the kernel send an event (madvise
  // that drops pages, munmap): returns at once unless faults are stuck behind events the monitor
  // has already read, and then once they are answered.
  //
  // Why: after the monitor reads an event, every fill fails with EAGAIN until the thread that
  // caused the event has run again (the kernel counts the change as under way until then). A
  // program that keeps making such calls from many threads (each exiting thread's stack madvise,
  // thousands of threads on two CPUs) keeps one of them always in that state, and a fault can
  // then wait for ever (a thread bomb stalled for minutes). Holding back new events while a fill
  // waits lets the ones already read finish; the threads held back have caused nothing yet and
  // hold nothing of the shim's, and the ones that must run again need nothing of theirs.
  void wait_while_fills_stalled();
  bool fills_stalled() const { return fills_stalled_.load(std::memory_order_acquire) != 0; }

  // Ranges the program takes for itself (monitor_claims.cpp). Called from program threads; each
  // returns once the monitor has done it, between two batches of faults, so that nothing it
  // installs can race the change.
  //
  // The program is about to take [start, end) for itself: its own userfaultfd registers it, or it
  // locks it. Every page a snapshot still owes there is put in place, then the range is
  // unregistered and forgotten: from then on the kernel (or the program's own handler) pages it,
  // as without the shim. Threads waiting on it are woken and fault again on what is there now.
  void step_aside(uintptr_t start, uintptr_t end);
  // Every missing page of [start, end) that lies in a registered region is put in place (zeros,
  // or what a snapshot owes): an access that the kernel makes without waiting for a fault handler
  // (a read or write of /proc/self/mem) then finds it there instead of failing.
  void make_present(uintptr_t start, uintptr_t end);

  // True once the monitor gave up (it then unregistered every range: the shim must stop
  // registering, and a range registered concurrently must be unregistered by its registrar).
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  bool running() const { return running_.load(std::memory_order_acquire); }
  // The doorbell page: never part of the program's memory, never touched.
  uintptr_t doorbell() const { return doorbell_; }
  // The descriptor the page source reads (the thread keeps it in its own table), or -1.
  int source_descriptor() const { return s_.source ? s_.source->descriptor() : -1; }

  // In a forked child: the thread was the parent's. Forget it so that init() and start() can
  // bring up a monitor of the child's own.
  void forget_after_fork();

  void run();  // the thread body

  // Checkpoint hand-over (core/checkpoint/). Has fn(arg) run on the monitor thread at a quiet
  // point of its loop (every message read, every queued fault answered); returns at once.
  // fn runs only once the doorbell this rings has been read: a monitor that took fn before the
  // doorbell's message was queued, and parked in it, would leave the caller in madvise for ever.
  void run_on_monitor(void (*fn)(void*), void* arg);
  // run_on_monitor in its three steps (tests reorder them): post fn, ring, say the ring is heard.
  void post_on_monitor(void (*fn)(void*), void* arg);
  void ring_doorbell() { ring(); }
  void doorbell_heard();
  // On the monitor thread, in a resumed process: forget what was queued before the checkpoint
  // and serve from `source` (null: zeros) from now on, with the resume call's readahead cap and
  // prefetch mode (readahead_pages 0: keep the checkpoint-time settings). The background fill
  // starts over: every lazy range the restorer registered is owed.
  void resumed(PageSource* source, PrefetchMode prefetch, uint32_t readahead_pages);
  // CLOCK_MONOTONIC when the background fill started by resumed() had gone over every region
  // (every owed page it could install is in place); 0 until then, or when no such fill runs.
  uint64_t resume_filled_ns() const { return resume_filled_ns_.load(std::memory_order_acquire); }
  // On the monitor thread, in a process resumed without a userfaultfd: nothing can be served, so
  // the thread ends and the shim runs unpaged (failed() is true).
  [[noreturn]] void retire();

 private:
  // kParked: the page's block has not landed (a remote source); the fault stays queued.
  enum class Served { kOk, kRetry, kExiting, kParked };

  bool pump();
  // FillHost: what the background fill calls between chunks.
  bool take_in() override;
  bool take_in_events() override;
  [[noreturn]] void fill_failed(const char* what, int err) override { fatal(what, err); }
  bool working_set_names(int32_t source) const;
  void handle_event(const uffd_msg& m);
  Served serve(const PendingFault& f);
  bool serve_queue();
  // A remote source's doorbell rang (blocks landed): parked faults and the fill try again.
  void doorbell_rang();
  int spin_for_more();  // 1: something arrived and was answered, 0: nothing came, -1: exiting
  size_t read_batch();  // messages read (0: none waiting)
  // Stops the process if the region table, full, lost a piece of a restored region that still
  // owes pages (they could only be served as zeros).
  void check_lost_pieces();
  uint64_t lost_seen_ = 0;
  void queue_fault(const uffd_msg& m, uint64_t read_ns);
  void wake_everyone();
  void wait_briefly();
  // Raises or lowers the gate of wait_while_fills_stalled(); lowering wakes whoever waits there.
  void set_fills_stalled(bool stalled);
  bool answer_requests();  // false: exiting
  void ring();
  // Posts a request, rings the doorbell and waits until `done` reaches the ticket.
  void request_and_wait(std::atomic<uint32_t>& requested, std::atomic<uint32_t>& done);
  void release_waiters();
  // Run on the new thread before start() returns (HiddenThread's prepare): a program that closes
  // every descriptor right after the shim started cannot close the userfaultfd under the monitor.
  static void own_descriptor_table(void* self);
  enum class Claim : uint8_t { kStepAside, kMakePresent };
  void claim(Claim kind, uintptr_t start, uintptr_t end);
  // On the monitor thread: carries out the claim posted (false: exiting).
  bool carry_out_claim();
  bool give_up_range(uintptr_t start, uintptr_t end);
  bool populate_range(uintptr_t start, uintptr_t end);
  [[noreturn]] void fatal(const char* what, int err);
  [[noreturn]] static void fatal_corrupt(const Region& r, uint64_t page_index, uintptr_t address, int err);

  Setup s_;
  FaultPolicy policy_;
  BackgroundFill fill_;
  PageSet working_set_pages_;  // the working set's pages as a set (built at init)
  FaultQueue queue_;
  HiddenThread thread_;
  CopyHelper copier_;
  bool want_copier_ = false;
  void* zero_pages_ = nullptr;
  void* stage_ = nullptr;  // where snapshot pages are read and checked before they are installed
  uffd_msg* msgs_ = nullptr;
  uintptr_t doorbell_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  bool stopping_ = false;    // the monitor thread has read the doorbell of a stop
  bool overflowed_ = false;  // faults were left out of the full queue: wake everyone once it drains
  std::atomic<bool> failed_{false};
  std::atomic<uint32_t> fill_requested_{0};
  std::atomic<uint32_t> fill_done_{0};
  std::atomic<uint32_t> sync_requested_{0};
  std::atomic<uint32_t> sync_done_{0};
  std::atomic<uint32_t> restored_{0};       // regions restored (fill starts over when it changes)
  uint32_t restored_seen_ = 0;
  std::atomic<uint32_t> fills_stalled_{0};  // 1 while a fill waits for events already read
  std::atomic<bool> awake_{true};           // the loop is not (about to be) asleep in ppoll
  std::atomic<uint32_t> ws_requested_{0};
  std::atomic<uint32_t> ws_done_{0};
  // One claim at a time: the claiming thread holds claim_lock_ (signals blocked) until it is done.
  SpinLock claim_lock_;
  Claim claim_kind_ = Claim::kStepAside;
  uintptr_t claim_start_ = 0;
  uintptr_t claim_end_ = 0;
  std::atomic<uint32_t> claim_requested_{0};
  std::atomic<uint32_t> claim_done_{0};
  std::atomic<void (*)(void*)> on_monitor_fn_{nullptr};
  std::atomic<uint32_t> on_monitor_rung_{0};  // 1 once the ring of run_on_monitor has returned
  bool watch_resume_fill_ = false;  // resumed() started a full fill: note when it is done
  std::atomic<uint64_t> resume_filled_ns_{0};
  void* on_monitor_arg_ = nullptr;
};

enum class AheadKind { kReadahead, kPrefetch };

// Receives one call per fault handled (the latency accounting plugs in here).
class FaultObserver {
 public:
  // `pages`: pages installed (fault-around installs several; a woken-only outcome none).
  virtual void fault_served(uint64_t read_ns, uint64_t done_ns, uint32_t tid, uint64_t address,
                            bool write, uint32_t region_id, int resolution, uint32_t pages) {
    (void)read_ns; (void)done_ns; (void)tid; (void)address; (void)write; (void)region_id; (void)resolution;
    (void)pages;
  }
  virtual void event_handled(int event, uint64_t start_ns, uint64_t done_ns) {
    (void)event; (void)start_ns; (void)done_ns;
  }
  // Pages installed without a fault waiting for them: the rest of a readahead window, or the
  // background fill (working set, everything else, before a fork).
  virtual void installed_ahead(AheadKind kind, uint32_t pages) { (void)kind; (void)pages; }

 protected:
  ~FaultObserver() = default;
};

}  // namespace uffdlazy
