// A set of source pages (snapshot region, page), one bit per page: the pages a working set names,
// so that replaying it can install, with each page, the pages after it that the working set also
// names (one run instead of one ioctl per page) without changing which pages go in.
//
// Built once, before the monitor starts, in memory of its own (raw mmap, aside); read-only after.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/monitor/page_source.h"

namespace uffdlazy {

class PageSet {
 public:
  // The pages of `runs`. False if the memory could not be mapped (the set is then empty).
  bool init(const SourceRun* runs, size_t count);
  void release();
  bool contains(int32_t source, uint64_t page) const {
    if (source < 0 || uint32_t(source) >= sources_) return false;
    const Span& s = spans_[source];
    if (page >= s.pages) return false;
    return (bits_[s.first_word + page / 64] >> (page % 64)) & 1;
  }
  bool empty() const { return sources_ == 0; }

 private:
  struct Span {
    uint64_t first_word;  // of this source region's bits
    uint64_t pages;       // one past the highest page named
  };
  Span* spans_ = nullptr;
  uint64_t* bits_ = nullptr;
  uint32_t sources_ = 0;
  void* mem_ = nullptr;
  size_t mem_size_ = 0;
};

}  // namespace uffdlazy
