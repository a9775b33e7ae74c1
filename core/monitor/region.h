// One registered range of the target's anonymous memory as the shim tracks it.
#pragma once

#include <cstdint>

namespace uffdlazy {

struct Region {
  uintptr_t start;
  uintptr_t end;          // exclusive
  uint32_t id;            // stable across splits and moves; names the region in reports
  int32_t source;         // snapshot region that fills it, or kZeroSource
  uint64_t source_page;   // the source page that corresponds to `start`
  int32_t prot;
  int32_t flags;
  uint64_t site;          // allocation call site, CallSiteTable::pack()ed; 0 if unknown
  uint32_t ordinal;       // how many mappings that site made before this one
  uint64_t alloc_length;  // the length the mapping was created with
  // Memory whose content belongs to state a restore does not bring back (the brk heap, .bss,
  // thread stacks, whose descriptor glibc expects zeroed): never recorded, never restored.
  bool unrestorable;

  static constexpr int32_t kZeroSource = -1;

  uint64_t length() const { return end - start; }
  bool contains(uintptr_t a) const { return a >= start && a < end; }
  bool overlaps(uintptr_t s, uintptr_t e) const { return start < e && s < end; }

  // The part of this region inside [s, e), with the source page shifted to match.
  Region clipped(uintptr_t s, uintptr_t e, uint64_t page_size) const {
    Region r = *this;
    if (s > r.start) {
      if (r.source != kZeroSource) r.source_page += (s - r.start) / page_size;
      r.start = s;
    }
    if (e < r.end) r.end = e;
    return r;
  }
};

}  // namespace uffdlazy
