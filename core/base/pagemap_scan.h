// The PAGEMAP_SCAN ioctl of /proc/PID/pagemap (Linux 6.7): which pages of a range are present,
// swapped, written since they were write-protected (userfaultfd's asynchronous mode), ... as
// ranges, from one system call that skips unpopulated page tables. The build's kernel headers may
// predate it, so the ABI is spelled out here under names of our own. Header-only and free of the
// C++ library: the freestanding restorer uses it too.
#pragma once

#include <cstdint>
#include <linux/ioctl.h>

namespace uffdlazy::pagemap {

// Page categories (the kernel's PAGE_IS_*).
inline constexpr uint64_t kWpAllowed = 1u << 0;
inline constexpr uint64_t kWritten = 1u << 1;  // not write-protected by userfaultfd
inline constexpr uint64_t kFile = 1u << 2;
inline constexpr uint64_t kPresent = 1u << 3;
inline constexpr uint64_t kSwapped = 1u << 4;
inline constexpr uint64_t kPfnZero = 1u << 5;

// Flags (PM_SCAN_*).
inline constexpr uint64_t kWpMatching = 1u << 0;    // write-protect the pages reported
inline constexpr uint64_t kCheckWpAsync = 1u << 1;  // fail on memory without asynchronous wp

struct Range {  // struct page_region
  uint64_t start, end, categories;
};
static_assert(sizeof(Range) == 24);

struct ScanArg {  // struct pm_scan_arg
  uint64_t size;
  uint64_t flags;
  uint64_t start, end;
  uint64_t walk_end;  // out: where the walk stopped (end, or where the output filled up)
  uint64_t vec, vec_len;
  uint64_t max_pages;  // 0: no limit
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
static_assert(sizeof(ScanArg) == 96);

inline constexpr unsigned long kScanIoctl = _IOWR('f', 16, ScanArg);

}  // namespace uffdlazy::pagemap
