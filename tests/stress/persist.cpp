#include "tests/stress/persist.h"

#include <sys/mman.h>

#include "tests/stress/page_pattern.h"
#include "tests/stress/worker.h"

namespace stress {

PersistentRegion g_persist;

uint64_t PersistentRegion::tag(size_t page) const {
  if (page % 4 == 3) return 0;
  return make_tag(0xFFFFE, seed * 1000003 + page + 1);
}

bool set_up_persistent_region(uint64_t seed, int threads) {
  g_persist.seed = seed;
  g_persist.pages = kPersistPagesPerThread * size_t(threads);
  void* m = mmap(nullptr, g_persist.pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  g_persist.base = static_cast<char*>(m);
  // Only page 0 is read here; a restore serves the others when the threads and children touch them.
  g_persist.restored = check_page(g_persist.base, kPage, g_persist.tag(0), false).ok;
  if (g_persist.restored) return true;
  if (!page_is_zero(g_persist.base, kPage)) {
    report("wrong page: the persistent region's page 0 is neither zeros nor the pattern (word0=%#llx)",
           (unsigned long long)*reinterpret_cast<uint64_t*>(g_persist.base));
    return false;
  }
  for (size_t i = 0; i < g_persist.pages; i++) fill_page(g_persist.base + i * kPage, kPage, g_persist.tag(i));
  return true;
}

int check_persistent_pages(size_t first, size_t count, const char* who) {
  int bad = 0;
  for (size_t i = first; i < first + count && i < g_persist.pages; i++) {
    PageLook look = check_page(g_persist.base + i * kPage, kPage, g_persist.tag(i), false);
    if (look.ok) continue;
    bad++;
    report("wrong page: %s: persistent page %zu (%s run): expected %#llx, found word0=%#llx, first wrong word %zu", who,
           i, g_persist.restored ? "restored" : "fresh", (unsigned long long)g_persist.tag(i),
           (unsigned long long)look.word0, look.bad_word);
  }
  return bad;
}

}  // namespace stress
