// Plain event and fault counts the monitor keeps for the exit summary. Single writer (the monitor
// thread), read at exit by another thread: relaxed atomics are enough.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>

namespace uffdlazy {

struct MonitorCounters {
  std::atomic<uint64_t> faults{0};           // fault messages handled
  std::atomic<uint64_t> pages_zero{0};       // pages installed as zeros
  std::atomic<uint64_t> pages_data{0};       // pages installed from a source in answer to faults
  std::atomic<uint64_t> readahead{0};        // of pages_zero + pages_data: beyond the faulting page
  std::atomic<uint64_t> prefetched{0};       // pages installed by the background fill, before any fault
  std::atomic<uint64_t> already_present{0};  // EEXIST: raced or duplicate fault, woken
  std::atomic<uint64_t> gone{0};             // ENOENT: range unmapped or moved meanwhile, woken
  std::atomic<uint64_t> requeued{0};         // more waiting pages than the queue holds: woken later to fault again
  std::atomic<uint64_t> unregistered{0};     // mappings left to the kernel after the program closed our descriptor
  std::atomic<uint64_t> regions{0};          // regions registered
  std::atomic<uint64_t> refused{0};          // regions the kernel would not register
  std::atomic<uint64_t> aside{0};            // registered pieces given back to the kernel: the program
                                             // took them for itself (its own userfaultfd, mlock)
  std::atomic<uint64_t> remove{0};
  std::atomic<uint64_t> unmap{0};
  std::atomic<uint64_t> remap{0};
  std::atomic<uint64_t> fork{0};

  void reset() {
    for (auto* c : {&faults, &pages_zero, &pages_data, &readahead, &prefetched, &already_present, &gone, &requeued, &unregistered, &regions, &refused, &aside,
                    &remove, &unmap, &remap, &fork})
      c->store(0, std::memory_order_relaxed);
  }
  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

}  // namespace uffdlazy
