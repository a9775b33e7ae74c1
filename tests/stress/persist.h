// --persist: one region that must survive `uffdlazy record` then `uffdlazy restore` of the same
// command line. It is the program's first mapping (so it matches by call site and ordinal), holds a
// pattern derived from the seed (data pages, and every fourth page zero), and is never changed or
// unmapped, so it is in the snapshot taken at exit. A restored run finds it already filled and
// serves it lazily from the snapshot: every thread reads its own slice now and then, and every
// forked child checks all of it, pages the parent has not touched yet included.
#pragma once

#include <cstddef>
#include <cstdint>

namespace stress {

inline constexpr size_t kPersistPagesPerThread = 4;

struct PersistentRegion {
  char* base = nullptr;
  size_t pages = 0;
  uint64_t seed = 0;
  bool restored = false;
  uint64_t tag(size_t page) const;  // 0 for the zero pages
};
extern PersistentRegion g_persist;

// Maps it (or finds it restored) before any thread starts. False if it cannot be mapped, or if it
// holds something that is neither zeros nor the pattern (a restore that served wrong pages).
bool set_up_persistent_region(uint64_t seed, int threads);
// Pages [first, first + count) that do not hold what they must; reports each (from a child too: no allocation).
int check_persistent_pages(size_t first, size_t count, const char* who);

}  // namespace stress
