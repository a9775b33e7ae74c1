#include "core/base/present_pages.h"

#include <cerrno>
#include <fcntl.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

int PresentPages::open(uint64_t page_size) {
  close();
  page_size_ = page_size;
  const long fd = sys::openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return int(fd);
  fd_ = int(fd);
  return 0;
}

void PresentPages::close() {
  if (fd_ >= 0) sys::close(fd_);
  fd_ = -1;
  found_count_ = scan_from_ = scan_walked_ = 0;
  chunk_first_ = ~uint64_t(0);
}

uint64_t PresentPages::entry(uint64_t addr) {
  const uint64_t page = addr / page_size_;
  if (page < chunk_first_ || page >= chunk_first_ + kChunk) {
    chunk_first_ = page;
    const long r = fd_ < 0 ? -EBADF : sys::pread(fd_, chunk_, sizeof chunk_, long(page * 8));
    const uint64_t got = r > 0 ? uint64_t(r) / 8 : 0;
    for (uint64_t k = got; k < kChunk; k++) chunk_[k] = 0;
  }
  return chunk_[page - chunk_first_];
}

uint64_t PresentPages::next(uint64_t from, uint64_t end, bool own_only) {
  if (from >= end) return end;
  if (!scan_unsupported_ && fd_ >= 0) {
    bool unsupported = false;
    const uint64_t at = next_by_scan(from, end, own_only, &unsupported);
    if (!unsupported) return at;
    scan_unsupported_ = true;
  }
  return next_by_pagemap(from, end, own_only);
}

uint64_t PresentPages::next_by_scan(uint64_t from, uint64_t end, bool own_only, bool* unsupported) {
  for (;;) {
    if (own_only == scan_own_ && from >= scan_from_ && from < scan_walked_) {
      for (uint64_t i = 0; i < found_count_; i++) {
        if (found_[i].end <= from) continue;
        const uint64_t at = found_[i].start > from ? found_[i].start : from;
        return at < end ? at : end;
      }
      // Nothing more in what the last scan walked: go on from where it stopped.
      from = scan_walked_;
      if (from >= end) return end;
    }
    pagemap::ScanArg arg = {};
    arg.size = sizeof arg;
    arg.start = from;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(found_);
    arg.vec_len = sizeof found_ / sizeof found_[0];
    arg.category_anyof_mask = pagemap::kPresent | pagemap::kSwapped;
    if (own_only) {
      // Not a page-cache page: the file bit, inverted, must be set.
      arg.category_inverted = pagemap::kFile;
      arg.category_mask = pagemap::kFile;
    }
    arg.return_mask = pagemap::kPresent | pagemap::kSwapped;
    const long n = sys::ioctl(fd_, pagemap::kScanIoctl, &arg);
    if (n < 0) {
      *unsupported = true;  // ENOTTY or EINVAL before 6.7: read the pagemap instead
      return end;
    }
    found_count_ = uint64_t(n);
    scan_from_ = from;
    scan_walked_ = arg.walk_end > from ? arg.walk_end : end;
    scan_own_ = own_only;
    if (found_count_ == 0 && scan_walked_ >= end) return end;
  }
}

uint64_t PresentPages::next_by_pagemap(uint64_t from, uint64_t end, bool own_only) {
  for (uint64_t addr = from; addr < end; addr += page_size_) {
    const uint64_t e = entry(addr);
    if (own_only ? own(e) : (e & (kPresentBit | kSwappedBit)) != 0) return addr;
  }
  return end;
}

}  // namespace uffdlazy
