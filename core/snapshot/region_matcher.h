// Decides which snapshot region, if any, a new mapping of the running program restores.
//
// Two modes, chosen at init:
//
//  - by site (ASLR on): a mapping matches a region when its allocation call site is the same
//    (module equal in the sense of same_module(): build-id when both sides have one of the same
//    kind, path otherwise; offset of the call site in the module equal), its ordinal is equal (the
//    Nth of all the mappings that site made), its length equals the region's allocation length,
//    and its prot and mmap flags are those the region was created with. Only regions still whole
//    (length == alloc_length, both rounded to pages) can match: a region that was trimmed or split
//    after it was allocated does not say where it sat inside the allocation.
//  - by address (no-ASLR): all of the above, and the same start address. An address alone is never
//    enough: any change in the layout (another setting, another input) would otherwise hand a
//    mapping the content of whatever region was recorded where it now lies.
//
// Lengths compare rounded up to pages, as the kernel maps them. Each snapshot region matches at
// most once; the regions never matched are listed at the end (next_unmatched).
//
// match() may run on several threads at once: the matched bitmap is updated atomically, so two
// racing queries for the same region cannot both win it.
//
// Memory: one sys::mmap at init (an open-addressing table of 4-byte slots, at least twice the
// region count, and one bit per region). Nothing comes from the heap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/snapshot/executable_identity.h"
#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy::snap {

// A module as the running process sees it: its path and build-id (or content hash).
struct ModuleKey {
  const char* path = nullptr;
  uint32_t path_length = 0;
  IdKind id_kind = IdKind::kNone;
  const uint8_t* id = nullptr;
  uint32_t id_length = 0;

  static ModuleKey of(const ModuleIdentity& m) { return ModuleKey{m.path, m.path_length, m.id_kind, m.id, m.id_length}; }
  bool has_id() const { return id_kind != IdKind::kNone && id_length > 0; }
};

// same_module() semantics between a running module and a module recorded in a snapshot.
bool same_module(const ModuleKey& a, const ModuleView& b);

struct MappingQuery {
  uint64_t start = 0;
  uint64_t length = 0;  // as passed to mmap; rounded up to pages here
  int32_t prot = 0;
  int32_t flags = 0;
  // Site identity (by-site mode): the snapshot's module index for the call site's module, from
  // RegionMatcher::find_module() (kNoModule when unknown: such a mapping never matches).
  uint32_t module = kNoModule;
  uint64_t offset = 0;   // of the call site within the module
  uint64_t ordinal = 0;  // how many mappings that site made before this one
};

class RegionMatcher {
 public:
  enum class Mode : uint8_t { kBySite, kByAddress };

  RegionMatcher() = default;
  ~RegionMatcher() { release(); }
  RegionMatcher(const RegionMatcher&) = delete;
  RegionMatcher& operator=(const RegionMatcher&) = delete;

  // `reader` must stay open while this matcher is used. Returns 0, -EINVAL (reader not open),
  // -E2BIG (more regions than the table holds) or -ENOMEM. Calling it again starts over.
  int init(const SnapshotReader* reader, Mode mode);
  // The mode a snapshot asks for: by address when it was captured with ASLR off.
  static Mode mode_for(const SnapshotReader& reader) {
    return (reader.header().flags & kFlagNoAslr) ? Mode::kByAddress : Mode::kBySite;
  }
  void release();
  Mode mode() const { return mode_; }

  // The snapshot module that is `m`, or kNoModule. A linear scan of the module table: callers
  // resolve each running module once and keep the answer.
  uint32_t find_module(const ModuleKey& m) const;
  uint32_t find_module(const ModuleIdentity& m) const { return find_module(ModuleKey::of(m)); }

  // The snapshot region `q` restores, now marked matched, or -1. The restored mapping's first
  // page is that region's page 0.
  int64_t match(const MappingQuery& q);
  // The same without marking anything (and regardless of earlier matches): for reports and tests.
  int64_t lookup(const MappingQuery& q) const;

  uint64_t region_count() const { return region_count_; }
  bool matched(uint64_t region) const;
  uint64_t matched_count() const { return __atomic_load_n(&matched_count_, __ATOMIC_RELAXED); }
  uint64_t unmatched_count() const { return region_count_ - matched_count(); }
  // The first region at or after `from` never matched, or -1: for (r = next_unmatched(0); r >= 0;
  // r = next_unmatched(r + 1)) ...
  int64_t next_unmatched(uint64_t from) const;

 private:
  uint64_t hash_region(uint64_t r) const;
  uint64_t hash_query(const MappingQuery& q, uint64_t rounded_length) const;
  bool eligible(uint64_t r) const;  // can region r match at all in this mode
  bool same_identity(uint64_t a, uint64_t b) const;
  bool fits(uint64_t r, const MappingQuery& q, uint64_t rounded_length) const;
  int64_t find(const MappingQuery& q, bool claim);

  const SnapshotReader* reader_ = nullptr;
  Mode mode_ = Mode::kBySite;
  uint64_t page_size_ = 0;
  uint64_t region_count_ = 0;
  uint32_t* slots_ = nullptr;  // region index + 1; 0 = empty
  uint64_t slot_mask_ = 0;
  uint64_t* matched_bits_ = nullptr;
  void* mem_ = nullptr;
  size_t mem_size_ = 0;
  uint64_t matched_count_ = 0;
};

}  // namespace uffdlazy::snap
