#include "core/monitor/page_set.h"

#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

bool PageSet::init(const SourceRun* runs, size_t count) {
  release();
  uint32_t sources = 0;
  for (size_t i = 0; i < count; i++) {
    if (runs[i].source + 1 > sources) sources = runs[i].source + 1;
  }
  if (!sources) return true;
  // Two passes over the runs: the extent of each source region first (into a scratch array of
  // spans, the first part of the mapping), then the bits.
  const size_t span_bytes = sizeof(Span) * sources;
  long probe = mmap_aside(span_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(probe)) return false;
  Span* extent = reinterpret_cast<Span*>(probe);
  for (size_t i = 0; i < count; i++) {
    const uint64_t end = runs[i].first_page + runs[i].pages;
    if (end > extent[runs[i].source].pages) extent[runs[i].source].pages = end;
  }
  uint64_t words = 0;
  for (uint32_t s = 0; s < sources; s++) {
    extent[s].first_word = words;
    words += (extent[s].pages + 63) / 64;
  }
  const size_t bytes = span_bytes + words * sizeof(uint64_t);
  long m = mmap_aside(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(m)) {
    sys::munmap(extent, span_bytes);
    return false;
  }
  mem_ = reinterpret_cast<void*>(m);
  mem_size_ = bytes;
  spans_ = static_cast<Span*>(mem_);
  bits_ = reinterpret_cast<uint64_t*>(static_cast<char*>(mem_) + span_bytes);
  for (uint32_t s = 0; s < sources; s++) spans_[s] = extent[s];
  sys::munmap(extent, span_bytes);
  for (size_t i = 0; i < count; i++) {
    const Span& sp = spans_[runs[i].source];
    for (uint64_t p = runs[i].first_page; p < runs[i].first_page + runs[i].pages; p++) {
      bits_[sp.first_word + p / 64] |= uint64_t(1) << (p % 64);
    }
  }
  sources_ = sources;
  return true;
}

void PageSet::release() {
  if (mem_) sys::munmap(mem_, mem_size_);
  mem_ = nullptr;
  mem_size_ = 0;
  spans_ = nullptr;
  bits_ = nullptr;
  sources_ = 0;
}

}  // namespace uffdlazy
