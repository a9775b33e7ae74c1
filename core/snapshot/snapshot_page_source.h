// The snapshot as a PageSource: serves each stored page of each snapshot region at most once.
//
//   SnapshotReader reader;  reader.open(path);       // the caller keeps it open
//   SnapshotPageSource src; src.init(&reader, verify);
//   monitor setup: s.source = &src;                  // region.source = snapshot region index
//
// Every region gets an "owed" bitmap, one bit per page, set for every stored page (data, duplicate,
// parent and zero entries; absent pages are never owed: the kernel's zero fill is already right
// for them). The bitmaps are sized by the regions' pages (a bit each, untouched zero memory where
// nothing is stored); setting them up costs the stored pages, run by run. consume() and
// drop() clear bits; a page whose bit is clear reads as zeros forever after.
//
// owed_pages() (what the monitor asks before forking and before giving up) counts only owed data
// and duplicate pages: a stored zero page still owed needs nothing from us, since the kernel reads
// zeros there anyway once the monitor is gone, and the fill before a fork skips kZero pages without
// consuming them. owed_zero_pages() and owed_all_pages() give the rest.
//
// Threads: peek/consume/drop run on the monitor thread only (the single writer). The counters and
// the reports may be read from any thread at any time (relaxed atomics on 64-bit words).
//
// Memory: one sys::mmap at init: 40 bytes per region plus one bit per page (two with
// verification). Nothing comes from the heap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/monitor/page_source.h"
#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy::snap {

// One snapshot region, for the exit report.
struct RegionAccount {
  uint64_t pages = 0;          // page_count
  uint64_t owed_at_start = 0;  // data + duplicate + zero entries
  uint64_t served = 0;         // consumed while owed (installed by the monitor)
  uint64_t dropped = 0;        // dropped while owed (munmap, madvise, ...)
  uint64_t still_owed = 0;     // owed_at_start - served - dropped
  uint64_t never_touched() const { return owed_at_start - served; }  // dropped + still owed
};

// The whole source, for the exit report.
struct SourceReport {
  uint64_t regions = 0;
  uint64_t regions_served = 0;       // regions with at least one page served
  uint64_t pages_owed_at_start = 0;  // data + duplicate + zero entries
  uint64_t pages_served = 0;
  uint64_t pages_dropped = 0;
  uint64_t pages_still_owed = 0;     // including stored zero pages
  uint64_t pages_never_touched = 0;  // owed at start and never served
  uint64_t pages_verified = 0;       // distinct pages whose checksum was checked and matched
  uint64_t corrupt_pages = 0;        // peeks that found a checksum mismatch
};

class SnapshotPageSource final : public uffdlazy::PageSource {
 public:
  SnapshotPageSource() = default;
  ~SnapshotPageSource() { release(); }
  SnapshotPageSource(const SnapshotPageSource&) = delete;
  SnapshotPageSource& operator=(const SnapshotPageSource&) = delete;

  // `reader` must be open and stay open (and in place) while this source is used.
  // verify_pages: check each data/duplicate page's XXH3-64 the first time it is peeked or read.
  // fd: the snapshot file opened for reading (the same file as the reader's), or -1. Runs shorter
  // than kMappedRun pages are read with pread into the caller's buffer and checked there: for
  // scattered pages that costs less than a page fault on the file mapping (which maps 16 pages
  // around the one asked for). Longer runs are checked and handed out straight from the mapping:
  // the faults are amortised over the run and the extra copy would cost more. Without a
  // descriptor every run comes from the mapping. The descriptor is not closed by release().
  // Returns 0, -EINVAL (reader not open) or -ENOMEM. Calling it again starts over.
  int init(const SnapshotReader* reader, bool verify_pages, int fd = -1);
  void release();
  bool ready() const { return reader_ != nullptr; }
  const SnapshotReader* reader() const { return reader_; }

  // PageSource. `source` is the snapshot region index, `page` the page within it.
  // Owed data/duplicate page: {kData or kDuplicate, pointer into the file mapping}, or
  // {kCorrupt, nullptr} when verification is on and the checksum does not match.
  // Anything else (stored zero page, absent, consumed, dropped, out of range): {kZero, nullptr}.
  uffdlazy::PageContent peek(int32_t source, uint64_t page) override;
  void consume(int32_t source, uint64_t page) override;
  void drop(int32_t source, uint64_t first, uint64_t count) override;
  uint64_t owed_pages() const override;  // data + duplicate pages still owed
  uint64_t owed_all_pages() const override { return owed_pages() + owed_zero_pages(); }
  bool owed(int32_t source, uint64_t page) override { return is_owed(source, page); }
  // Word by word through the bitmap: a fully served region is skipped 64 pages at a time.
  uint64_t next_owed(int32_t source, uint64_t from, uint64_t end) override { return first_owed(source, from, end); }
  uint64_t first_owed(int32_t source, uint64_t from, uint64_t end) const;
  // From the index alone: `where` is the block's file offset.
  uffdlazy::PageLocation locate(int32_t source, uint64_t page) override;
  static constexpr uint32_t kMappedRun = 8;
  // Runs of kMappedRun pages or more come straight from the mapping, checked with atomic updates
  // only: the copy helper may read its half of a run while the monitor reads the other.
  bool reads_in_place(uint32_t count) const override { return count >= kMappedRun; }
  uffdlazy::PagesRead read_pages(int32_t source, uint64_t first, uint32_t count, void* stage, uint64_t page_size,
                                 const void** data) override;
  int descriptor() const override { return fd_; }

  uint64_t owed_zero_pages() const { return load(owed_zero_); }
  uint64_t served_pages() const { return load(served_); }
  uint64_t dropped_pages() const { return load(dropped_); }
  uint64_t corrupt_pages() const { return load(corrupt_); }
  uint64_t verified_pages() const { return load(verified_); }
  bool is_owed(int32_t source, uint64_t page) const;

  uint64_t region_count() const { return region_count_; }
  // Zeros for an out-of-range region.
  RegionAccount region_account(uint64_t region) const;
  SourceReport report() const;

 private:
  struct RegionState {
    uint64_t word_first;  // first bitmap word of this region
    uint64_t page_count;
    uint64_t owed_at_start;
    uint64_t served;   // atomic
    uint64_t dropped;  // atomic
  };

  static uint64_t load(const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }
  static void add(uint64_t& v, uint64_t n) { __atomic_fetch_add(&v, n, __ATOMIC_RELAXED); }
  static void sub(uint64_t& v, uint64_t n) { __atomic_fetch_sub(&v, n, __ATOMIC_RELAXED); }
  bool valid(int32_t source, uint64_t page) const {
    return source >= 0 && uint64_t(source) < region_count_ && page < regions_[source].page_count;
  }
  // Clears the owed bits in `mask` of word `w` of region `r`; returns how many were set.
  uint64_t clear_bits(uint64_t r, uint64_t w, uint64_t mask, bool served);

  // Checks page `page` of region `source` against its index checksum (content at `data`) and
  // books it as verified. False for a mismatch.
  bool check(int32_t source, uint64_t page, const void* data);

  const SnapshotReader* reader_ = nullptr;
  int fd_ = -1;
  bool verify_ = false;
  uint64_t region_count_ = 0;
  RegionState* regions_ = nullptr;
  uint64_t* owed_bits_ = nullptr;
  uint64_t* verified_bits_ = nullptr;  // only with verification
  void* mem_ = nullptr;
  size_t mem_size_ = 0;

  uint64_t owed_data_ = 0;  // data + duplicate pages still owed
  uint64_t owed_zero_ = 0;  // stored zero pages still owed
  uint64_t owed_at_start_ = 0;
  uint64_t served_ = 0;
  uint64_t dropped_ = 0;
  uint64_t corrupt_ = 0;
  uint64_t verified_ = 0;
};

}  // namespace uffdlazy::snap
