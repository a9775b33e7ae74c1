// Finds which pages of the calling process hold something of its own (in memory or swapped out),
// for writers that walk large, mostly empty ranges: with PAGEMAP_SCAN (Linux 6.7) one system call
// returns them as ranges and skips unpopulated page tables, so a 10 GiB reservation with two
// pages costs two pages; older kernels read /proc/self/pagemap, 512 pages per read.
//
// Raw system calls and fixed storage only: usable in a child cloned from a stopped process.
#pragma once

#include <cstdint>

#include "core/base/pagemap_scan.h"

namespace uffdlazy {

class PresentPages {
 public:
  // Opens /proc/self/pagemap: 0 or -errno.
  int open(uint64_t page_size);
  void close();
  ~PresentPages() { close(); }

  // The first page address in [from, end) that is present or swapped, and with own_only not a
  // page of a file's page cache (a private file mapping's unchanged page); `end` when none.
  uint64_t next(uint64_t from, uint64_t end, bool own_only);
  // The raw /proc/self/pagemap entry of the page at `addr` (0 when it cannot be read).
  uint64_t entry(uint64_t addr);

  static constexpr uint64_t kPresentBit = uint64_t(1) << 63;
  static constexpr uint64_t kSwappedBit = uint64_t(1) << 62;
  static constexpr uint64_t kFileBit = uint64_t(1) << 61;
  static bool own(uint64_t e) { return (e & kSwappedBit) || ((e & kPresentBit) && !(e & kFileBit)); }

 private:
  uint64_t next_by_scan(uint64_t from, uint64_t end, bool own_only, bool* unsupported);
  uint64_t next_by_pagemap(uint64_t from, uint64_t end, bool own_only);

  int fd_ = -1;
  uint64_t page_size_ = 4096;
  bool scan_unsupported_ = false;
  // The last scan: what it found in [scan_from_, scan_walked_) for own_only == scan_own_.
  pagemap::Range found_[64] = {};
  uint64_t found_count_ = 0;
  uint64_t scan_from_ = 0, scan_walked_ = 0;
  bool scan_own_ = false;
  // The last pagemap chunk read: entries for pages chunk_first_ .. + kChunk.
  static constexpr uint64_t kChunk = 512;
  uint64_t chunk_[kChunk] = {};
  uint64_t chunk_first_ = ~uint64_t(0);
};

}  // namespace uffdlazy
