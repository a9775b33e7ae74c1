#include "core/base/aside_mmap.h"
#include "core//snapshot/snapshot_page_source.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include "core/base/raw_syscall.h"
#include "core/snapshot/checksum.h"

namespace uffdlazy::snap {

namespace {

constexpr uint64_t kBits = 64;

uint64_t words_for(uint64_t pages) { return (pages + kBits - 1) / kBits; }

bool data_kind(PageKind k) { return k == PageKind::kData || k == PageKind::kDuplicate || k == PageKind::kParent; }

// A block's position for PageLocation: its file (depth) above its offset, so that only blocks of
// one file are ever adjacent.
uint64_t where_of(const PageEntry& e) { return uint64_t(entry_depth(e)) << 56 | entry_offset(e); }

// Bits [lo, hi) of a word, 0 <= lo < hi <= 64.
uint64_t bit_range(uint64_t lo, uint64_t hi) {
  const uint64_t upper = hi == kBits ? ~uint64_t(0) : (uint64_t(1) << hi) - 1;
  return upper & ~((uint64_t(1) << lo) - 1);
}

}  // namespace

int SnapshotPageSource::init(const SnapshotReader* reader, bool verify_pages, int fd) {
  release();
  if (!reader || !reader->is_open()) return -EINVAL;

  const uint64_t n = reader->region_count();
  uint64_t words = 0;
  for (uint64_t r = 0; r < n; r++) words += words_for(reader->region(r).page_count);
  const uint64_t bytes = n * sizeof(RegionState) + words * sizeof(uint64_t) * (verify_pages ? 2 : 1);
  if (bytes > 0) {
    const long page = long(reader->page_size());
    const size_t size = size_t((bytes + page - 1) / page * page);
    const long m = mmap_aside(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sys::failed(m)) return -ENOMEM;
    mem_ = reinterpret_cast<void*>(m);
    mem_size_ = size;
  }
  // Fresh anonymous memory is zero: every bit clear, every counter 0.
  regions_ = static_cast<RegionState*>(mem_);
  owed_bits_ = mem_ ? reinterpret_cast<uint64_t*>(regions_ + n) : nullptr;
  verified_bits_ = verify_pages && mem_ ? owed_bits_ + words : nullptr;

  // Every stored page is owed: its bits are set run by run, so the work follows the stored pages
  // (the bitmap of a large, mostly absent region stays untouched zero pages).
  uint64_t word = 0;
  uint64_t data = 0, zero = 0;
  for (uint64_t r = 0; r < n; r++) {
    RegionState& st = regions_[r];
    const RegionRecord& rec = reader->region(r);
    st.word_first = word;
    st.page_count = rec.page_count;
    for (uint64_t k = 0; k < rec.run_count; k++) {
      const RunRecord& run = reader->run(r, k);
      for (uint64_t p = run.first_page; p < run.first_page + run.pages;) {
        const uint64_t w = p / kBits, lo = p % kBits;
        const uint64_t hi = run.first_page + run.pages - w * kBits >= kBits ? kBits : run.first_page + run.pages - w * kBits;
        owed_bits_[word + w] |= bit_range(lo, hi);
        p = w * kBits + hi;
      }
    }
    st.owed_at_start = rec.entry_count;
    zero += rec.zero_pages;
    data += rec.entry_count - rec.zero_pages;
    word += words_for(st.page_count);
  }

  reader_ = reader;
  fd_ = fd;
  verify_ = verify_pages;
  region_count_ = n;
  owed_at_start_ = data + zero;
  __atomic_store_n(&owed_data_, data, __ATOMIC_RELAXED);
  __atomic_store_n(&owed_zero_, zero, __ATOMIC_RELAXED);
  return 0;
}

void SnapshotPageSource::release() {
  if (mem_) sys::munmap(mem_, mem_size_);
  mem_ = nullptr;
  mem_size_ = 0;
  reader_ = nullptr;
  fd_ = -1;
  verify_ = false;
  region_count_ = 0;
  regions_ = nullptr;
  owed_bits_ = nullptr;
  verified_bits_ = nullptr;
  owed_data_ = owed_zero_ = owed_at_start_ = served_ = dropped_ = corrupt_ = verified_ = 0;
}

bool SnapshotPageSource::is_owed(int32_t source, uint64_t page) const {
  if (!valid(source, page)) return false;
  const uint64_t w = load(owed_bits_[regions_[source].word_first + page / kBits]);
  return (w >> (page % kBits)) & 1;
}

uffdlazy::PageContent SnapshotPageSource::peek(int32_t source, uint64_t page) {
  using uffdlazy::PageContent;
  if (!is_owed(source, page)) return PageContent{uffdlazy::PageKind::kZero, nullptr};
  const PageRef ref = reader_->page(uint64_t(source), page);
  if (!data_kind(ref.kind) && ref.kind != PageKind::kPacked) {
    return PageContent{uffdlazy::PageKind::kZero, nullptr};  // a stored zero page
  }
  if (!ref.data) {
    // In an ancestor that is not open, or packed (only in regions the restorer puts in place, never
    // served from here: ProcessImage): nothing can be served for it.
    // In an ancestor that is not open: nothing can be served for it.
    add(corrupt_, 1);
    return PageContent{uffdlazy::PageKind::kCorrupt, nullptr};
  }
  if (verify_) {
    uint64_t& w = verified_bits_[regions_[source].word_first + page / kBits];
    const uint64_t bit = uint64_t(1) << (page % kBits);
    if (!(load(w) & bit)) {
      if (!reader_->verify_page(uint64_t(source), page)) {
        add(corrupt_, 1);
        return PageContent{uffdlazy::PageKind::kCorrupt, nullptr};
      }
      __atomic_fetch_or(&w, bit, __ATOMIC_RELAXED);
      add(verified_, 1);
    }
  }
  return PageContent{ref.kind == PageKind::kDuplicate ? uffdlazy::PageKind::kDuplicate : uffdlazy::PageKind::kData,
                     ref.data};
}

bool SnapshotPageSource::check(int32_t source, uint64_t page, const void* data) {
  uint64_t& w = verified_bits_[regions_[source].word_first + page / kBits];
  const uint64_t bit = uint64_t(1) << (page % kBits);
  if (checksum(data, reader_->page_size()) != reader_->entry(uint64_t(source), page).checksum) {
    add(corrupt_, 1);
    return false;
  }
  if (!(load(w) & bit)) {
    __atomic_fetch_or(&w, bit, __ATOMIC_RELAXED);
    add(verified_, 1);
  }
  return true;
}

uffdlazy::PageLocation SnapshotPageSource::locate(int32_t source, uint64_t page) {
  if (!is_owed(source, page)) return uffdlazy::PageLocation{uffdlazy::PageKind::kZero, false, 0};
  const PageEntry e = reader_->entry(uint64_t(source), page);
  switch (entry_kind(e)) {
    case PageKind::kData:
    case PageKind::kParent: return uffdlazy::PageLocation{uffdlazy::PageKind::kData, true, where_of(e)};
    case PageKind::kDuplicate: return uffdlazy::PageLocation{uffdlazy::PageKind::kDuplicate, true, where_of(e)};
    case PageKind::kPacked: return uffdlazy::PageLocation{uffdlazy::PageKind::kCorrupt, true, 0};  // see peek()
    default: return uffdlazy::PageLocation{uffdlazy::PageKind::kZero, true, 0};
  }
}

uffdlazy::PagesRead SnapshotPageSource::read_pages(int32_t source, uint64_t first, uint32_t count, void* stage,
                                                   uint64_t page_size, const void** data) {
  using uffdlazy::PagesRead;
  if (!count || !valid(source, first) || first + count > regions_[source].page_count) {
    return PagesRead{0, PagesRead::kIoError, EINVAL};
  }
  // The caller found the blocks adjacent in one file (locate): one read takes them all.
  const PageEntry e = reader_->entry(uint64_t(source), first);
  if (entry_kind(e) == PageKind::kPacked) return PagesRead{0, PagesRead::kCorrupt, 0};  // see peek()
  const uint64_t offset = entry_offset(e);
  const uint64_t bytes = uint64_t(count) * page_size;
  const uint8_t* at = reader_->block(e);
  if (!at) return PagesRead{0, PagesRead::kCorrupt, 0};  // in an ancestor that is not open
  uint32_t good = count;
  PagesRead::Stop stop = PagesRead::kAll;
  int err = 0;
  if (fd_ >= 0 && count < kMappedRun && entry_depth(e) == 0) {
    uint8_t* dst = static_cast<uint8_t*>(stage);
    uint64_t got = 0;
    while (got < bytes) {
      long n = sys::pread(fd_, dst + got, bytes - got, long(offset + got));
      if (n == -EINTR) continue;
      if (n <= 0) {
        // Only whole pages count; a short file is an I/O error for the page that is missing.
        good = uint32_t(got / page_size);
        stop = PagesRead::kIoError;
        err = n < 0 ? int(-n) : EIO;
        break;
      }
      got += uint64_t(n);
    }
    at = dst;
  }
  *data = at;
  if (verify_) {
    for (uint32_t i = 0; i < good; i++) {
      if (!check(source, first + i, at + uint64_t(i) * page_size)) return PagesRead{i, PagesRead::kCorrupt, 0};
    }
  }
  return PagesRead{good, stop, err};
}

uint64_t SnapshotPageSource::clear_bits(uint64_t r, uint64_t w, uint64_t mask, bool served) {
  RegionState& st = regions_[r];
  uint64_t& word = owed_bits_[st.word_first + w];
  if (!(load(word) & mask)) return 0;
  uint64_t flipped = __atomic_fetch_and(&word, ~mask, __ATOMIC_RELAXED) & mask;
  const uint64_t count = uint64_t(__builtin_popcountll(flipped));
  uint64_t zero = 0;
  while (flipped) {
    const uint64_t bit = uint64_t(__builtin_ctzll(flipped));
    flipped &= flipped - 1;
    if (entry_kind(reader_->entry(r, w * kBits + bit)) == PageKind::kZero) zero++;
  }
  if (zero) sub(owed_zero_, zero);
  if (count > zero) sub(owed_data_, count - zero);
  if (served) {
    add(st.served, count);
    add(served_, count);
  } else {
    add(st.dropped, count);
    add(dropped_, count);
  }
  return count;
}

void SnapshotPageSource::consume(int32_t source, uint64_t page) {
  if (!valid(source, page)) return;
  clear_bits(uint64_t(source), page / kBits, uint64_t(1) << (page % kBits), true);
}

void SnapshotPageSource::drop(int32_t source, uint64_t first, uint64_t count) {
  if (source < 0 || uint64_t(source) >= region_count_) return;
  const uint64_t pages = regions_[source].page_count;
  if (first >= pages || count == 0) return;
  const uint64_t end = count > pages - first ? pages : first + count;
  for (uint64_t p = first; p < end;) {
    const uint64_t w = p / kBits;
    const uint64_t lo = p % kBits;
    const uint64_t hi = end - w * kBits >= kBits ? kBits : end - w * kBits;
    clear_bits(uint64_t(source), w, bit_range(lo, hi), false);
    p = w * kBits + hi;
  }
}

uint64_t SnapshotPageSource::owed_pages() const { return load(owed_data_); }

uint64_t SnapshotPageSource::first_owed(int32_t source, uint64_t from, uint64_t end) const {
  if (source < 0 || uint64_t(source) >= region_count_) return end;
  const RegionState& st = regions_[source];
  // A region with nothing owed is skipped at once (large regions mostly absent are common).
  if (load(st.served) + load(st.dropped) == st.owed_at_start) return end;
  const uint64_t stop = end < st.page_count ? end : st.page_count;
  uint64_t p = from;
  while (p < stop) {
    uint64_t w = load(owed_bits_[st.word_first + p / kBits]) >> (p % kBits);
    if (w) {
      p += uint64_t(__builtin_ctzll(w));
      return p < stop ? p : end;
    }
    p = (p / kBits + 1) * kBits;
  }
  return end;
}

RegionAccount SnapshotPageSource::region_account(uint64_t region) const {
  RegionAccount a;
  if (region >= region_count_) return a;
  const RegionState& st = regions_[region];
  a.pages = st.page_count;
  a.owed_at_start = st.owed_at_start;
  a.served = load(st.served);
  a.dropped = load(st.dropped);
  a.still_owed = a.owed_at_start - a.served - a.dropped;
  return a;
}

SourceReport SnapshotPageSource::report() const {
  SourceReport rep;
  rep.regions = region_count_;
  for (uint64_t r = 0; r < region_count_; r++) {
    if (load(regions_[r].served)) rep.regions_served++;
  }
  rep.pages_owed_at_start = owed_at_start_;
  rep.pages_served = served_pages();
  rep.pages_dropped = dropped_pages();
  rep.pages_still_owed = owed_all_pages();
  rep.pages_never_touched = rep.pages_owed_at_start - rep.pages_served;
  rep.pages_verified = verified_pages();
  rep.corrupt_pages = corrupt_pages();
  return rep;
}

}  // namespace uffdlazy::snap
