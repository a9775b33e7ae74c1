// The monitor: a hidden thread that owns the userfaultfd, reads faults and events in batches and
// answers every fault with a page, keeping the region table in step with the kernel's events.
//
// It must never wait on anything a faulting thread may hold: it allocates nothing after init(),
// uses no stdio and no libc locks, blocks every signal, and touches only its own memory (never a
// registered range). Before it is started, everything it needs is preallocated.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <linux/userfaultfd.h>

#include "core/base/spin_lock.h"
#include "core/monitor/monitor_counters.h"
#include "core/monitor/page_source.h"
#include "core/monitor/region_table.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {

class FaultObserver;

class Monitor {
 public:
  struct Setup {
    Userfaultfd* uffd = nullptr;
    RegionTable* table = nullptr;
    SpinLock* table_lock = nullptr;
    PageSource* source = nullptr;        // null: every page is zero-filled
    MonitorCounters* counters = nullptr;
    FaultObserver* observer = nullptr;   // optional: per-fault timing
    uint64_t page_size = 4096;
    // Zero-filled faults install this many pages at once (the faulting page and those after it in
    // the same region), as THP does for anonymous memory in one step: a sequential writer then
    // pays one round trip per window instead of per page. Sourced pages are always served singly.
    uint32_t fault_around_pages = 1;
    // Pin the monitor to this CPU (-1: let the scheduler place it). A fault round trip between
    // two vCPUs costs several times one on a single vCPU, so a latency-sensitive single-threaded
    // target does best with itself and the monitor on one CPU (taskset plus this).
    int cpu = -1;
    // After answering faults, keep polling this long for the next one before sleeping.
    uint64_t spin_ns = 0;
  };
  static constexpr uint32_t kMaxFaultAround = 512;

  bool init(const Setup& setup);
  // Spawns the thread with every signal blocked. False if the thread could not be created.
  bool start();
  // Stops and joins the thread (tests and the fork child's cleanup; a real target never stops it).
  void stop();

  // Called from a target thread before fork(): returns once every page the source still owes is
  // in place, so the child (whose memory is not registered) sees the parent's exact contents.
  void fill_all_owed();

  // Returns once the monitor has finished answering every fault it had read when called, so that
  // counts taken afterwards include the caller's own faults (the monitor wakes a thread before
  // it books the fault). Used at exit.
  void sync();

  // True once the monitor gave up (it then closed the uffd: the shim must stop registering).
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  bool running() const { return running_.load(std::memory_order_acquire); }

  // In a forked child: the thread, the eventfd and the uffd were the parent's. Forget them so
  // that init() and start() can bring up a monitor of the child's own.
  void forget_after_fork();

  void run();  // the thread body

 private:
  struct Pending {
    uint64_t address;
    uint64_t flags;
    uint32_t tid;
    uint64_t read_ns;
  };
  enum class Served { kOk, kRetry, kExiting };

  bool pump();
  void handle_event(const uffd_msg& m);
  Served serve(const Pending& f);
  bool serve_queue();
  bool spin_for_more();
  FillResult zero_fill(uintptr_t start, uint64_t len, bool write);
  size_t read_batch();  // messages read (0: none waiting)
  void wait_briefly();
  void fill_owed_now();
  // Posts a request on the control eventfd and waits until `done` reaches the ticket.
  void request_and_wait(std::atomic<uint32_t>& requested, std::atomic<uint32_t>& done);
  void release_waiters();
  [[noreturn]] void fatal(const char* what, int err);
  [[noreturn]] void fatal_corrupt(const Region& r, uint64_t page_index, uintptr_t address);

  Setup s_;
  int ctl_fd_ = -1;
  unsigned long thread_ = 0;
  void* zero_page_ = nullptr;
  uffd_msg* msgs_ = nullptr;
  Pending* queue_ = nullptr;
  size_t queue_len_ = 0;
  size_t queue_head_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint32_t> fill_requested_{0};
  std::atomic<uint32_t> fill_done_{0};
  std::atomic<uint32_t> sync_requested_{0};
  std::atomic<uint32_t> sync_done_{0};
};

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

 protected:
  ~FaultObserver() = default;
};

}  // namespace uffdlazy
