// A bounded in-memory log of every handled fault, written to a binary trace file at exit.
//
// The buffer is one raw anonymous mapping sized at init and touched only as it fills, so an
// unused capacity costs address space, not memory. When it is full the first records are kept
// and later ones only counted: the start of a run (where lazy paging matters) is the interesting
// part, and the file says how many were dropped.
//
// append() is for the single writer (the monitor thread); no locks, no allocation.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/latency/fault_record.h"

namespace uffdlazy {

// The trace file's fixed 64-byte header (native byte order), followed by `count` records.
struct TraceFileHeader {
  char magic[8];         // "UFFDTRC1"
  uint32_t version;      // kVersion
  uint32_t header_size;  // sizeof(TraceFileHeader)
  uint32_t record_size;  // sizeof(FaultRecord)
  uint32_t pid;
  uint64_t count;        // records that follow
  uint64_t dropped;      // faults not kept because the buffer was full
  uint64_t capacity;     // records the buffer could hold
  uint64_t start_ns;     // CLOCK_MONOTONIC origin of the run (timestamps are absolute)
  uint64_t page_size;

  static constexpr uint32_t kVersion = 1;
};
static_assert(sizeof(TraceFileHeader) == 64, "trace header layout is part of the file format");

class FaultTrace {
 public:
  static constexpr uint64_t kDefaultCapacity = uint64_t(1) << 20;

  // Maps room for `capacity` records. Returns 0 or -errno. Calling it again remaps.
  int init(uint64_t capacity = kDefaultCapacity);
  void release();

  void append(const FaultRecord& r) {
    uint64_t n = count_.load(std::memory_order_relaxed);
    if (n < capacity_) {
      records_[n] = r;
      count_.store(n + 1, std::memory_order_release);
    } else {
      dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
  }

  // Forget the records but keep the mapping (a fork child starts its own trace).
  void clear() {
    count_.store(0, std::memory_order_relaxed);
    dropped_.store(0, std::memory_order_relaxed);
  }

  uint64_t count() const { return count_.load(std::memory_order_acquire); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t capacity() const { return capacity_; }
  const FaultRecord* records() const { return records_; }

  // Writes header + records to `path` (created or truncated, mode 0644) with raw syscalls.
  // Returns 0 or -errno.
  int write_file(const char* path, uint32_t pid, uint64_t start_ns, uint64_t page_size) const;

 private:
  FaultRecord* records_ = nullptr;
  uint64_t capacity_ = 0;
  size_t mapped_bytes_ = 0;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> dropped_{0};
};

// write(2) until all of buf is out; 0 or -errno. Shared by the trace and report writers.
int write_all(int fd, const void* buf, size_t n);

}  // namespace uffdlazy
