#include "core/snapshot/region_matcher.h"

#include "core/base/align.h"
#include "core/base/aside_mmap.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy::snap {

namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  // splitmix64 finaliser over a running combination.
  uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

bool same_module(const ModuleKey& a, const ModuleView& b) {
  const bool b_has_id = b.id_kind != IdKind::kNone && b.id_length > 0;
  if (a.has_id() && b_has_id && a.id_kind == b.id_kind) {
    return a.id_length == b.id_length && !memcmp(a.id, b.id, a.id_length);
  }
  return a.path_length == b.path_length && !memcmp(a.path, b.path, a.path_length);
}

int RegionMatcher::init(const SnapshotReader* reader, Mode mode) {
  release();
  if (!reader || !reader->is_open()) return -EINVAL;
  const uint64_t n = reader->region_count();
  if (n >= (uint64_t(1) << 30)) return -E2BIG;

  uint64_t slots = 16;
  while (slots < 2 * n) slots <<= 1;
  const uint64_t bit_words = (n + 63) / 64;
  const uint64_t bytes = slots * sizeof(uint32_t) + bit_words * sizeof(uint64_t);
  const uint64_t ps = reader->page_size();
  const size_t size = size_t(align_up(bytes, ps));
  const long m = mmap_aside(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(m)) return -ENOMEM;
  mem_ = reinterpret_cast<void*>(m);
  mem_size_ = size;
  slots_ = static_cast<uint32_t*>(mem_);
  slot_mask_ = slots - 1;
  // slots * 4 is a multiple of 64 bytes (slots >= 16), so the bitmap is 8-byte aligned.
  matched_bits_ = reinterpret_cast<uint64_t*>(slots_ + slots);

  reader_ = reader;
  mode_ = mode;
  page_size_ = ps;
  region_count_ = n;
  for (uint64_t r = 0; r < n; r++) {
    if (!eligible(r)) continue;
    uint64_t i = hash_region(r) & slot_mask_;
    bool duplicate = false;
    while (slots_[i] && !(duplicate = same_identity(slots_[i] - 1, r))) i = (i + 1) & slot_mask_;
    // Two regions with one identity: a real capture never has them (each mapping of a site has an
    // ordinal of its own); only the first can match, and a crafted file of many gets no long
    // probe chains (init and match stay linear).
    if (!duplicate) slots_[i] = uint32_t(r + 1);
  }
  return 0;
}

void RegionMatcher::release() {
  if (mem_) sys::munmap(mem_, mem_size_);
  mem_ = nullptr;
  mem_size_ = 0;
  reader_ = nullptr;
  region_count_ = 0;
  slots_ = nullptr;
  slot_mask_ = 0;
  matched_bits_ = nullptr;
  matched_count_ = 0;
}

uint32_t RegionMatcher::find_module(const ModuleKey& m) const {
  if (!reader_) return kNoModule;
  for (uint32_t i = 0; i < reader_->module_count(); i++) {
    if (same_module(m, reader_->module(i))) return i;
  }
  return kNoModule;
}

bool RegionMatcher::eligible(uint64_t r) const {
  // Only regions still whole: a piece of a trimmed or split allocation does not say where it sat.
  const RegionRecord& rec = reader_->region(r);
  return rec.site_module != kNoModule && rec.alloc_length != 0 &&
         align_up(rec.length, page_size_) == align_up(rec.alloc_length, page_size_);
}

uint64_t RegionMatcher::hash_region(uint64_t r) const {
  const RegionRecord& rec = reader_->region(r);
  if (mode_ == Mode::kByAddress) return mix(mix(1, rec.start), align_up(rec.length, page_size_));
  return mix(mix(mix(mix(2, rec.site_module), rec.site_offset), rec.ordinal), align_up(rec.alloc_length, page_size_));
}

uint64_t RegionMatcher::hash_query(const MappingQuery& q, uint64_t rounded_length) const {
  if (mode_ == Mode::kByAddress) return mix(mix(1, q.start), rounded_length);
  return mix(mix(mix(mix(2, q.module), q.offset), q.ordinal), rounded_length);
}

bool RegionMatcher::same_identity(uint64_t a, uint64_t b) const {
  const RegionRecord& x = reader_->region(a);
  const RegionRecord& y = reader_->region(b);
  return x.site_module == y.site_module && x.site_offset == y.site_offset && x.ordinal == y.ordinal &&
         align_up(x.alloc_length, page_size_) == align_up(y.alloc_length, page_size_) && x.prot == y.prot &&
         x.map_flags == y.map_flags && (mode_ == Mode::kBySite || x.start == y.start);
}

bool RegionMatcher::fits(uint64_t r, const MappingQuery& q, uint64_t rounded_length) const {
  // Every part of the identity must agree; the address too when ASLR was off, never instead.
  const RegionRecord& rec = reader_->region(r);
  if (mode_ == Mode::kByAddress && rec.start != q.start) return false;
  return rec.site_module == q.module && rec.site_offset == q.offset && rec.ordinal == q.ordinal &&
         align_up(rec.alloc_length, page_size_) == rounded_length && rec.prot == uint32_t(q.prot) &&
         rec.map_flags == uint32_t(q.flags);
}

int64_t RegionMatcher::find(const MappingQuery& q, bool claim) {
  if (!reader_ || q.length == 0 || q.module == kNoModule) return -1;
  const uint64_t len = align_up(q.length, page_size_);
  for (uint64_t i = hash_query(q, len) & slot_mask_;; i = (i + 1) & slot_mask_) {
    const uint32_t s = slots_[i];
    if (!s) return -1;  // the table is never full (at least twice the regions)
    const uint64_t r = s - 1;
    if (!fits(r, q, len)) continue;
    if (!claim) return int64_t(r);
    const uint64_t bit = uint64_t(1) << (r % 64);
    const uint64_t old = __atomic_fetch_or(&matched_bits_[r / 64], bit, __ATOMIC_ACQ_REL);
    if (old & bit) return -1;  // taken already (each identity is in the table once)
    __atomic_fetch_add(&matched_count_, 1, __ATOMIC_RELAXED);
    return int64_t(r);
  }
}

int64_t RegionMatcher::match(const MappingQuery& q) { return find(q, true); }

int64_t RegionMatcher::lookup(const MappingQuery& q) const { return const_cast<RegionMatcher*>(this)->find(q, false); }

bool RegionMatcher::matched(uint64_t region) const {
  if (region >= region_count_) return false;
  return (__atomic_load_n(&matched_bits_[region / 64], __ATOMIC_RELAXED) >> (region % 64)) & 1;
}

int64_t RegionMatcher::next_unmatched(uint64_t from) const {
  for (uint64_t r = from; r < region_count_; r++) {
    if (!matched(r)) return int64_t(r);
  }
  return -1;
}

}  // namespace uffdlazy::snap
