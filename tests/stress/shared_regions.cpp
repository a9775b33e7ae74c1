#include "tests/stress/shared_regions.h"

#include <sys/mman.h>

#include "tests/stress/worker.h"

namespace stress {

SharedRegion* g_shared = nullptr;
int g_shared_count = 0;

bool set_up_shared_regions(int threads, uint64_t seed) {
  g_shared = new SharedRegion[size_t(threads)];
  g_shared_count = threads;
  for (int t = 0; t < threads; t++) {
    void* m = mmap(nullptr, kSharedPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    SharedRegion& r = g_shared[t];
    r.base = static_cast<char*>(m);
    r.first_tag = make_tag(0xFFFFD, (seed % 100000) * 1000000 + uint64_t(t) * kSharedPages + 1);
    for (size_t i = 0; i < kSharedPages; i++) fill_page(r.base + i * kPage, kPage, r.first_tag + i);
  }
  return true;
}

SharedLook check_shared_page(const SharedRegion& r, size_t page) {
  auto* w = reinterpret_cast<const volatile uint64_t*>(r.base + page * kPage);
  const uint64_t tag = r.first_tag + page;
  const size_t words = kPage / 8;
  size_t i = 0;
  while (i < words && w[i] == pattern_word(tag, i)) i++;
  const size_t prefix = i;
  while (i < words && w[i] == 0) i++;
  return {i == words, prefix};
}

long tear_down_shared_regions() {
  long bad = 0;
  for (int t = 0; t < g_shared_count; t++) {
    SharedRegion& r = g_shared[t];
    if (!r.base) continue;
    for (size_t i = 0; i < kSharedPages; i++) {
      SharedLook look = check_shared_page(r, i);
      // Nobody drops pages any more: each is now either the whole pattern or all zeros.
      if (look.ok && (look.pattern_words == 0 || look.pattern_words == kPage / 8)) continue;
      bad++;
      report("wrong page: shared region of thread %d, page %zu at the end: %zu words of the pattern, then not zeros",
             t, i, look.pattern_words);
    }
    munmap(r.base, kSharedPages * kPage);
    r.base = nullptr;
  }
  return bad;
}

}  // namespace stress
