// A second thread that installs half of a long run of pages while the monitor installs the other.
//
// Filling memory is the kernel copying pages: UFFDIO_COPY allocates, charges, maps and copies each
// one, and a single thread does that at a fixed rate (about 0.6 of what read(2) into fresh memory
// costs here). Two threads copying disjoint halves of a range take half the time (measured: 512
// MiB in 90 ms with two, 180 ms with one, 340 ms by read(2)).
//
// The helper decides nothing. The monitor hands it the second half of a run it has already chosen
// (owed pages, adjacent in the snapshot file), reads, checks and copies the first half itself, and
// waits for the helper before it does anything else: it reads no event and answers no fault in
// between. The helper reads and checks its half the same way (PageSource::read_pages, in place)
// and copies the good prefix. So the pages installed are at most those one copy of the whole run
// would have installed, with the same guarantee against dropped pages (an event queued meanwhile
// makes either copy fail with EAGAIN; no event is read and applied while a handed-off copy is
// under way), and a page that fails its checksum is never installed.
//
// Like the monitor it runs with every signal blocked, on a stack of its own aside, on a descriptor
// table of its own that holds only the userfaultfd; it allocates nothing and takes no lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/base/hidden_thread.h"
#include "core/monitor/page_source.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {

class CopyHelper {
 public:
  // From the thread that starts the monitor (pthread_create may allocate: never from the monitor).
  // spin_ns: how long the helper keeps looking for the next job before it sleeps.
  bool start(Userfaultfd* uffd, uint64_t spin_ns);
  // Stops and joins the thread.
  void stop();
  // The thread does not exist here (a forked child, a resumed process): never use it again.
  void forget();
  bool available() const { return running_.load(std::memory_order_acquire); }

  // Pages [first, first + count) of source region `region`, to be installed at dst.
  struct Job {
    PageSource* source;
    int32_t region;
    uint64_t first;
    uint32_t count;
    uintptr_t dst;
    uint64_t page_size;
  };
  struct Outcome {
    PagesRead read;   // the prefix that was read and checked
    FillResult fill;  // the copy of that prefix (nothing copied if the prefix is empty)
  };
  // Monitor only, one job at a time: post() then wait().
  void post(const Job& job);
  Outcome wait();

 private:
  static void* thread_main(void* self);
  // On the new thread before start() returns (see Monitor::own_descriptor_table).
  static void own_descriptor_table(void* self);
  void run();

  HiddenThread thread_;
  Userfaultfd* uffd_ = nullptr;
  uint64_t spin_ns_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> sleeping_{false};
  // Futex words: jobs posted and jobs done, counted.
  std::atomic<uint32_t> posted_{0};
  std::atomic<uint32_t> done_{0};
  // The job, written by the monitor before posted_ moves, read by the helper after; the outcome,
  // written by the helper before done_ moves.
  Job job_ = {};
  Outcome outcome_ = {};
};

}  // namespace uffdlazy
