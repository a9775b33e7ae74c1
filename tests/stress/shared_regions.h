// The "shared" family: memory one thread changes while the others read it. Each thread owns one
// region, filled with a pattern before the threads start and never written again; its owner only
// takes pages away (DONTNEED, FREE+PAGEOUT, MAP_FIXED over them, MREMAP_DONTUNMAP of a page), so
// a page only ever goes from the pattern to zeros. Other threads read the regions at any moment,
// faulting on pages the owner is dropping. A reader may catch a page mid-drop (the words it read
// first still the pattern, the later ones zero), so what every read must see is: a prefix of the
// pattern, then zeros. Anything else (zeros then data, another page's data) is a wrong page.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tests/stress/page_pattern.h"

namespace stress {

inline constexpr size_t kSharedPages = 32;

struct SharedRegion {
  char* base = nullptr;
  uint64_t first_tag = 0;  // page i holds the pattern of first_tag + i
};

extern SharedRegion* g_shared;
extern int g_shared_count;

bool set_up_shared_regions(int threads, uint64_t seed);
// Once no thread reads them any more: every page checked one last time, then unmapped.
long tear_down_shared_regions();

struct SharedLook {
  bool ok;
  size_t pattern_words;  // how many words from the start still held the pattern
};
SharedLook check_shared_page(const SharedRegion& r, size_t page);

}  // namespace stress
