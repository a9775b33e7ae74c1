// The page index as runs of stored pages: a region's cost in the file, to write and to open follows
// the pages it stores, not its size; and incremental images, whose unchanged pages stay in the
// images they build on (ancestors), checked before they are used.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

namespace {

struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/uffdlazy-runs-XXXXXX";
    const char* d = mkdtemp(tmpl);
    path = d ? d : "/tmp";
  }
  ~Dir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

const uint32_t kPs = uint32_t(sysconf(_SC_PAGESIZE));

// A page whose bytes say which page it is (and of which generation).
std::vector<uint8_t> content(uint64_t page, uint64_t generation) {
  std::vector<uint8_t> p(kPs, uint8_t(page * 7 + generation + 1));
  memcpy(p.data(), &page, sizeof page);
  memcpy(p.data() + 8, &generation, sizeof generation);
  return p;
}

// Stores the listed pages of a region (everything else absent), and says which pages are
// unchanged since a parent image: their entry there is taken from `parent`.
class ListedPages final : public PageProvider {
 public:
  std::vector<uint64_t> stored;     // in order
  std::vector<uint64_t> unchanged_pages;
  uint64_t generation = 0;
  const SnapshotReader* parent = nullptr;
  uint64_t parent_region = 0;
  uint64_t asked = 0;  // page() calls
  std::vector<uint8_t> buf;

  const void* page(uint64_t i) override {
    asked++;
    for (uint64_t s : stored) {
      if (s == i) {
        buf = content(i, generation);
        return buf.data();
      }
    }
    for (uint64_t u : unchanged_pages) {
      if (u == i && parent) {
        const PageRef ref = parent->page(parent_region, i);
        if (ref.kind == PageKind::kZero) {
          buf.assign(kPs, 0);
          return buf.data();
        }
        return ref.data;
      }
    }
    return nullptr;
  }
  uint64_t next(uint64_t from, uint64_t end) override {
    uint64_t best = end;
    for (uint64_t s : stored) {
      if (s >= from && s < best) best = s;
    }
    for (uint64_t u : unchanged_pages) {
      if (u >= from && u < best) best = u;
    }
    return best;
  }
  bool unchanged(uint64_t i, PageEntry* in_parent) override {
    for (uint64_t u : unchanged_pages) {
      if (u == i && parent) {
        *in_parent = parent->entry(parent_region, i);
        return entry_kind(*in_parent) != PageKind::kAbsent;
      }
    }
    return false;
  }
};

AncestorInfo ancestor_of(const SnapshotReader& r, const char* path) {
  AncestorInfo a{};
  a.record.header_checksum = r.header().header_checksum;
  a.record.file_size = r.file_size();
  a.record.created_ns = r.header().created_ns;
  a.record.data_offset = r.data_offset();
  a.record.data_length = r.data_length();
  a.path = path;
  return a;
}

constexpr uint64_t kStart = 0x7f0000000000ull;

void write_image(const std::string& path, ListedPages& pages, uint64_t region_pages,
                 const std::vector<AncestorInfo>& ancestors = {}) {
  ModuleIdentity exe;
  exe.set_path("/usr/bin/app", 12);
  SnapshotWriter w;
  WriterOptions opt;
  opt.sync = false;
  ASSERT_TRUE(w.open(path.c_str(), opt).ok());
  ASSERT_TRUE(w.begin(exe, 0).ok());
  if (!ancestors.empty()) {
    ASSERT_TRUE(w.set_ancestors(ancestors.data(), uint32_t(ancestors.size())).ok());
  }
  RegionInfo info{kStart, region_pages * kPs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, CallSite{}};
  ASSERT_TRUE(w.add_region(info, pages).ok());
  ASSERT_TRUE(w.commit().ok());
}

TEST(SnapshotRuns, TenGibRegionWithTwoPagesCostsTwoPages) {
  Dir d;
  const uint64_t pages = (10ull << 30) / kPs;
  ListedPages two;
  two.stored = {12345, pages - 1};
  write_image(d.file("sparse.snap"), two, pages);
  // The writer asked only about the pages the provider named.
  EXPECT_EQ(two.asked, 2u);
  struct stat st;
  ASSERT_EQ(stat(d.file("sparse.snap").c_str(), &st), 0);
  EXPECT_LT(st.st_size, 4 * long(kPs));  // header, two blocks, a few hundred bytes of tables

  SnapshotReader r;
  ASSERT_TRUE(r.open(d.file("sparse.snap").c_str()).ok());
  const RegionRecord& rec = r.region(0);
  EXPECT_EQ(rec.page_count, pages);
  EXPECT_EQ(rec.run_count, 2u);
  EXPECT_EQ(rec.entry_count, 2u);
  EXPECT_EQ(rec.absent_pages, pages - 2);
  EXPECT_EQ(r.page(0, 0).kind, PageKind::kAbsent);
  EXPECT_EQ(r.page(0, 12344).kind, PageKind::kAbsent);
  ASSERT_EQ(r.page(0, 12345).kind, PageKind::kData);
  EXPECT_EQ(memcmp(r.page(0, 12345).data, content(12345, 0).data(), kPs), 0);
  EXPECT_EQ(r.page(0, 12346).kind, PageKind::kAbsent);
  ASSERT_EQ(r.page(0, pages - 1).kind, PageKind::kData);
  EXPECT_EQ(r.next_stored(0, 12346), pages - 1);
  const VerifyReport rep = r.verify_all();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.pages, pages);
  EXPECT_EQ(rep.pages_checked, 2u);

  // What the monitor serves from: two owed pages, found without walking the region.
  SnapshotPageSource src;
  ASSERT_EQ(src.init(&r, true), 0);
  EXPECT_EQ(src.owed_pages(), 2u);
  EXPECT_EQ(src.next_owed(0, 0, pages), 12345u);
  EXPECT_EQ(src.next_owed(0, 12346, pages), pages - 1);
  EXPECT_FALSE(src.owed(0, 5));
  EXPECT_EQ(src.peek(0, 5).kind, uffdlazy::PageKind::kZero);
  const uffdlazy::PageContent c = src.peek(0, 12345);
  ASSERT_EQ(c.kind, uffdlazy::PageKind::kData);
  EXPECT_EQ(memcmp(c.data, content(12345, 0).data(), kPs), 0);
  src.consume(0, 12345);
  src.drop(0, 0, pages);
  EXPECT_EQ(src.owed_pages(), 0u);
  EXPECT_EQ(src.next_owed(0, 0, pages), pages);
}

TEST(SnapshotRuns, ConsecutivePagesShareARun) {
  Dir d;
  ListedPages p;
  p.stored = {3, 4, 5, 9, 10, 63, 64, 65};
  write_image(d.file("runs.snap"), p, 100);
  SnapshotReader r;
  ASSERT_TRUE(r.open(d.file("runs.snap").c_str()).ok());
  ASSERT_EQ(r.region(0).run_count, 3u);
  EXPECT_EQ(r.run(0, 0).first_page, 3u);
  EXPECT_EQ(r.run(0, 0).pages, 3u);
  EXPECT_EQ(r.run(0, 1).first_page, 9u);
  EXPECT_EQ(r.run(0, 2).pages, 3u);
  EXPECT_EQ(r.run(0, 2).entry, 5u);
  for (uint64_t i = 0; i < 100; i++) {
    const bool stored = (i >= 3 && i <= 5) || i == 9 || i == 10 || (i >= 63 && i <= 65);
    EXPECT_EQ(r.page(0, i).kind, stored ? PageKind::kData : PageKind::kAbsent) << i;
  }
  SnapshotPageSource src;
  ASSERT_EQ(src.init(&r, false), 0);
  EXPECT_EQ(src.owed_pages(), 8u);
  for (uint64_t i = 0; i < 100; i++) {
    EXPECT_EQ(src.owed(0, i), r.page(0, i).kind != PageKind::kAbsent) << i;
  }
}

// A parent with pages 0, 1 and 3..7, a child that changed page 1, dropped page 3, added
// page 9 and left the rest unchanged, and a grandchild that changed page 4 only.
class SnapshotChain : public ::testing::Test {
 protected:
  void SetUp() override {
    parent_path = d.file("parent.img");
    ListedPages p;
    p.stored = {0, 1, 3, 4, 5, 6, 7};
    p.unchanged_pages = {};
    write_image(parent_path, p, 16);
    ASSERT_TRUE(parent.open(parent_path.c_str()).ok());

    child_path = d.file("child.img");
    ListedPages c;
    c.generation = 1;
    c.stored = {1, 9};
    c.unchanged_pages = {0, 4, 5, 6, 7};
    c.parent = &parent;
    const AncestorInfo a = ancestor_of(parent, parent_path.c_str());
    write_image(child_path, c, 16, {a});
    ASSERT_TRUE(child.open(child_path.c_str()).ok());
  }
  Dir d;
  std::string parent_path, child_path;
  SnapshotReader parent, child;
};

TEST_F(SnapshotChain, ChildStoresOnlyWhatChanged) {
  const RegionRecord& rec = child.region(0);
  EXPECT_EQ(rec.data_pages, 2u);    // pages 1 and 9
  EXPECT_EQ(rec.parent_pages, 5u);  // 0, 4, 5, 6, 7
  EXPECT_EQ(child.data_length(), 2u * kPs);
  ASSERT_EQ(child.ancestor_count(), 1u);
  EXPECT_STREQ(child.ancestor(0).path, parent_path.c_str());
  EXPECT_EQ(child.page(0, 3).kind, PageKind::kAbsent);  // dropped: zeros, never the parent's
  const PageRef p0 = child.page(0, 0);
  EXPECT_EQ(p0.kind, PageKind::kParent);
  EXPECT_EQ(p0.depth, 1u);
  EXPECT_EQ(p0.data, nullptr);  // until the ancestors are open
  EXPECT_FALSE(child.ancestors_open());
  EXPECT_FALSE(child.verify_page(0, 0));

  ASSERT_TRUE(child.open_ancestors(child_path.c_str()).ok());
  EXPECT_TRUE(child.ancestors_open());
  for (uint64_t i : {0, 4, 5, 6, 7}) {
    const PageRef p = child.page(0, i);
    ASSERT_NE(p.data, nullptr) << i;
    EXPECT_EQ(memcmp(p.data, content(i, 0).data(), kPs), 0) << i;
    EXPECT_TRUE(child.verify_page(0, i));
  }
  EXPECT_EQ(memcmp(child.page(0, 1).data, content(1, 1).data(), kPs), 0);
  const VerifyReport rep = child.verify_all();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.parent_pages, 5u);
  EXPECT_EQ(rep.pages_checked, 7u);
}

TEST_F(SnapshotChain, PageSourceServesThroughTheChain) {
  ASSERT_TRUE(child.open_ancestors(child_path.c_str()).ok());
  SnapshotPageSource src;
  ASSERT_EQ(src.init(&child, true), 0);
  EXPECT_EQ(src.owed_pages(), 7u);
  const uffdlazy::PageLocation l4 = src.locate(0, 4), l5 = src.locate(0, 5), l9 = src.locate(0, 9);
  EXPECT_EQ(l4.kind, uffdlazy::PageKind::kData);
  // Blocks 4 and 5 are adjacent in the parent: one read; page 9's block is in another file.
  EXPECT_EQ(l5.where, l4.where + kPs);
  EXPECT_NE(l9.where >> 56, l4.where >> 56);
  const void* data = nullptr;
  std::vector<uint8_t> stage(4 * kPs);
  const uffdlazy::PagesRead got = src.read_pages(0, 4, 4, stage.data(), kPs, &data);
  ASSERT_EQ(got.pages, 4u);
  for (uint64_t i = 0; i < 4; i++) {
    EXPECT_EQ(memcmp(static_cast<const uint8_t*>(data) + i * kPs, content(4 + i, 0).data(), kPs), 0) << i;
  }
  const uffdlazy::PageContent c1 = src.peek(0, 1);
  ASSERT_EQ(c1.kind, uffdlazy::PageKind::kData);
  EXPECT_EQ(memcmp(c1.data, content(1, 1).data(), kPs), 0);
}

TEST_F(SnapshotChain, WithoutItsAncestorsNothingIsServedFromThem) {
  SnapshotPageSource src;
  ASSERT_EQ(src.init(&child, true), 0);
  EXPECT_EQ(src.peek(0, 4).kind, uffdlazy::PageKind::kCorrupt);
  EXPECT_EQ(src.peek(0, 1).kind, uffdlazy::PageKind::kData);
}

TEST_F(SnapshotChain, MissingOrReplacedParentRefused) {
  parent.close();
  const std::string moved = d.file("elsewhere.img");
  ASSERT_EQ(rename(parent_path.c_str(), moved.c_str()), 0);
  {
    SnapshotReader r;
    ASSERT_TRUE(r.open(child_path.c_str()).ok());
    const ReadStatus s = r.open_ancestors(child_path.c_str());
    EXPECT_EQ(s.error, ReadError::kAncestorMissing);
    uffdlazy::LineWriter w;
    describe(s, w);
    EXPECT_EQ(std::string(w.data(), w.size()),
              "incremental image: its parent image " + parent_path +
                  " cannot be opened: No such file or directory (ENOENT) (`uffdlazy compact` makes an image that "
                  "stands alone)");
    EXPECT_FALSE(r.ancestors_open());
  }
  // Another image under the parent's name: not the file the child was written against.
  ListedPages other;
  other.stored = {0, 1, 3, 4, 5, 6, 7};
  other.generation = 5;
  write_image(parent_path, other, 16);
  {
    SnapshotReader r;
    ASSERT_TRUE(r.open(child_path.c_str()).ok());
    const ReadStatus s = r.open_ancestors(child_path.c_str());
    EXPECT_EQ(s.error, ReadError::kAncestorChanged);
    uffdlazy::LineWriter w;
    describe(s, w);
    EXPECT_NE(std::string(w.data(), w.size()).find("is not the file it was written against"), std::string::npos);
  }
}

TEST_F(SnapshotChain, ChainMovedTogetherStillOpens) {
  parent.close();
  child.close();
  Dir other;
  ASSERT_EQ(rename(parent_path.c_str(), other.file("parent.img").c_str()), 0);
  ASSERT_EQ(rename(child_path.c_str(), other.file("child.img").c_str()), 0);
  SnapshotReader r;
  ASSERT_TRUE(r.open(other.file("child.img").c_str()).ok());
  ASSERT_TRUE(r.open_ancestors(other.file("child.img").c_str()).ok());
  EXPECT_EQ(std::string(r.ancestor(0).opened_path), other.file("parent.img"));
  EXPECT_TRUE(r.verify_all().ok());
}

TEST_F(SnapshotChain, GrandchildRefersToBothGenerations) {
  ASSERT_TRUE(child.open_ancestors(child_path.c_str()).ok());
  const std::string grand_path = d.file("grand.img");
  ListedPages g;
  g.generation = 2;
  g.stored = {4};
  g.unchanged_pages = {0, 1, 5, 9};
  g.parent = &child;
  std::vector<AncestorInfo> chain = {ancestor_of(child, child_path.c_str()), ancestor_of(parent, parent_path.c_str())};
  write_image(grand_path, g, 16, chain);
  SnapshotReader r;
  ASSERT_TRUE(r.open(grand_path.c_str()).ok());
  ASSERT_EQ(r.ancestor_count(), 2u);
  EXPECT_EQ(r.page(0, 0).depth, 2u);  // the parent's page 0, through the child
  EXPECT_EQ(r.page(0, 1).depth, 1u);  // the child's own page 1
  EXPECT_EQ(r.page(0, 4).kind, PageKind::kData);
  ASSERT_TRUE(r.open_ancestors(grand_path.c_str()).ok());
  EXPECT_EQ(memcmp(r.page(0, 0).data, content(0, 0).data(), kPs), 0);
  EXPECT_EQ(memcmp(r.page(0, 1).data, content(1, 1).data(), kPs), 0);
  EXPECT_EQ(memcmp(r.page(0, 9).data, content(9, 1).data(), kPs), 0);
  EXPECT_TRUE(r.verify_all().ok());
}

TEST_F(SnapshotChain, TooDeepAReferenceIsStoredInstead) {
  // With only the child as ancestor, a page the child left in its parent cannot be referred to
  // (that would be depth 2): the writer asks for its content and stores it.
  ASSERT_TRUE(child.open_ancestors(child_path.c_str()).ok());
  const std::string grand_path = d.file("grand.img");
  ListedPages g;
  g.generation = 2;
  g.unchanged_pages = {0, 1};
  g.parent = &child;
  const AncestorInfo only_child = ancestor_of(child, child_path.c_str());
  write_image(grand_path, g, 16, {only_child});
  SnapshotReader r;
  ASSERT_TRUE(r.open(grand_path.c_str()).ok());
  EXPECT_EQ(r.page(0, 0).kind, PageKind::kData);
  EXPECT_EQ(memcmp(r.page(0, 0).data, content(0, 0).data(), kPs), 0);
  EXPECT_EQ(r.page(0, 1).kind, PageKind::kParent);
  EXPECT_EQ(r.page(0, 1).depth, 1u);
}

}  // namespace
