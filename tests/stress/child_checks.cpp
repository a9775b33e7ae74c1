#include "tests/stress/child_checks.h"

#include <sys/mman.h>

#include "tests/stress/page_pattern.h"
#include "tests/stress/persist.h"
#include "tests/stress/shared_regions.h"

namespace stress {

namespace {

constexpr size_t kOwnPages = 16;

// The child's own new mapping: fresh pages read zeros, written pages keep what was written.
int workout_own_mapping(uint64_t tag_base) {
  void* m = mmap(nullptr, kOwnPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return kChildMmapFailed;
  char* p = static_cast<char*>(m);
  int bad = 0;
  for (size_t i = 0; i < kOwnPages; i += 2) fill_page(p + i * kPage, kPage, tag_base + i + 1);
  for (size_t i = 0; i < kOwnPages; i++) {
    uint64_t tag = i % 2 == 0 ? tag_base + i + 1 : 0;
    if (!check_page(p + i * kPage, kPage, tag, false).ok) bad++;
  }
  munmap(m, kOwnPages * kPage);
  return bad ? kChildOwnPagesWrong : kChildOk;
}

}  // namespace

int check_in_child(const Worker& w, ChildKind kind) {
  int bad = 0;
  for (const Block& b : w.blocks) {
    for (size_t i = 0; i < b.pages.size(); i++) {
      const PageState& p = b.pages[i];
      if (!(p.prot & PROT_READ)) continue;
      if (!check_page(b.base + i * kPage, kPage, p.tag, p.freed).ok) bad++;
    }
  }
  // All of the persistent region, most of it not touched by the parent yet: after a restore,
  // pages the snapshot still owes.
  if (g_persist.base) bad += check_persistent_pages(0, g_persist.pages, "a child");
  // The forking thread's shared region, as the child's copy froze it mid-run.
  if (g_shared) {
    for (size_t i = 0; i < kSharedPages; i++) {
      SharedLook look = check_shared_page(g_shared[w.id], i);
      if (!look.ok) bad++;
    }
  }
  if (bad) return bad > kChildMaxBadPages ? kChildMaxBadPages : bad;
  if (kind == ChildKind::kReadOnly) return kChildOk;
  // Writes in the child are its own copies: they read back here and never show in the parent.
  uint64_t tag_base = make_tag(uint32_t(w.id), (uint64_t(1) << 38) + w.tag_counter);
  for (const Block& b : w.blocks) {
    for (size_t i = 0; i < b.pages.size() && i < 4; i++) {
      if (b.pages[i].prot != (PROT_READ | PROT_WRITE)) continue;
      fill_page(b.base + i * kPage, kPage, tag_base + 100 + i);
      if (!check_page(b.base + i * kPage, kPage, tag_base + 100 + i, false).ok) bad++;
    }
  }
  if (bad) return bad;
  return workout_own_mapping(tag_base);
}

const char* child_status_text(int status) {
  if (status >= 1 && status <= kChildMaxBadPages) return "pages of the parent's memory read wrong in the child";
  if (status == kChildMmapFailed) return "mmap failed in the child";
  if (status == kChildOwnPagesWrong) return "the child's own new mapping read wrong";
  return "unexpected status";
}

int child_selftest(uint64_t seed) {
  // A moved, grown and partly dropped mapping in a freshly exec'd program (the shim, if preloaded,
  // starts afresh in it).
  const size_t n = 32;
  void* m = mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return kChildMmapFailed;
  char* p = static_cast<char*>(m);
  uint64_t base = make_tag(0xFFFFF, seed * 1000);
  for (size_t i = 0; i < n; i += 3) fill_page(p + i * kPage, kPage, base + i + 1);
  void* g = mremap(p, n * kPage, 2 * n * kPage, MREMAP_MAYMOVE);
  if (g == MAP_FAILED) return kChildMmapFailed;
  p = static_cast<char*>(g);
  madvise(p + 8 * kPage, 8 * kPage, MADV_DONTNEED);
  int bad = 0;
  for (size_t i = 0; i < 2 * n; i++) {
    bool tagged = i < n && i % 3 == 0 && !(i >= 8 && i < 16);
    if (!check_page(p + i * kPage, kPage, tagged ? base + i + 1 : 0, false).ok) bad++;
  }
  munmap(p, 2 * n * kPage);
  return bad > kChildMaxBadPages ? kChildMaxBadPages : bad;
}

}  // namespace stress
