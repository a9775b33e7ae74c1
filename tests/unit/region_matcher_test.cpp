// RegionMatcher: which snapshot region a new mapping restores, by call site (module, offset,
// ordinal, length, prot, flags) and, without ASLR, by the address as well; each region at most once.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/region_matcher.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

namespace {

ModuleIdentity module(const char* path, uint8_t seed, IdKind kind = IdKind::kGnuBuildId) {
  ModuleIdentity m;
  m.set_path(path, strlen(path));
  m.id_kind = kind;
  m.id_length = kind == IdKind::kNone ? 0 : 20;
  for (int i = 0; i < 20; i++) m.id[i] = uint8_t(seed + i);
  return m;
}

class RegionMatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uffdlazy-match-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ps_ = uint32_t(sysconf(_SC_PAGESIZE));
    exe_.set_path("/usr/bin/app", 12);
    foo_ = module("/usr/lib/libfoo.so.1", 7);
    bar_ = module("/opt/bar/libbar.so", 90);
    plain_ = module("/usr/lib/libplain.so", 0, IdKind::kNone);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  struct Spec {
    uint64_t start;
    uint64_t length;
    const ModuleIdentity* module;
    uint64_t offset;
    uint64_t ordinal;
    uint64_t alloc_length;
  };

  std::string write(const std::vector<Spec>& specs, uint64_t flags) {
    const std::string path = dir_ + "/s" + std::to_string(n_++) + ".snap";
    SnapshotWriter w;
    WriterOptions o;
    o.sync = false;
    EXPECT_TRUE(w.open(path.c_str(), o).ok());
    EXPECT_TRUE(w.begin(exe_, flags).ok());
    for (const Spec& s : specs) {
      RegionInfo info{s.start, s.length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      CallSite{s.module, s.offset, s.ordinal, s.alloc_length}};
      EXPECT_TRUE(w.add_region_with(info, [](uint64_t) -> const void* { return nullptr; }).ok());
    }
    EXPECT_TRUE(w.commit().ok());
    return path;
  }

  // Seven regions:
  //   0: libfoo +0x1234 #0, 8 pages          1: libfoo +0x1234 #1, 8 pages
  //   2: libbar +0x1234 #0, 4 pages          3: libfoo +0x5000 #0, 2 pages, allocated as 4 (trimmed)
  //   4: unknown site, 4 pages               5: libplain +0x40 #0, 3 pages
  //   6: libbar +0x1234 #0, 4 pages (the same identity as 2)
  std::vector<Spec> standard() {
    const uint64_t p = ps_;
    return {
        {0x7f0000000000, 8 * p, &foo_, 0x1234, 0, 8 * p},
        {0x7f0000100000, 8 * p, &foo_, 0x1234, 1, 8 * p},
        {0x7f0000200000, 4 * p, &bar_, 0x1234, 0, 4 * p},
        {0x7f0000300000, 2 * p, &foo_, 0x5000, 0, 4 * p},
        {0x7f0000400000, 4 * p, nullptr, 0, 0, 4 * p},
        {0x7f0000500000, 3 * p, &plain_, 0x40, 0, 3 * p - 100},
        {0x7f0000600000, 4 * p, &bar_, 0x1234, 0, 4 * p},
    };
  }

  MappingQuery site(uint32_t mod, uint64_t offset, uint64_t ordinal, uint64_t length) {
    MappingQuery q;
    q.start = 0x5555000000;  // anywhere: ASLR moved it
    q.length = length;
    q.prot = PROT_READ | PROT_WRITE;
    q.flags = MAP_PRIVATE | MAP_ANONYMOUS;
    q.module = mod;
    q.offset = offset;
    q.ordinal = ordinal;
    return q;
  }

  std::string dir_;
  int n_ = 0;
  uint32_t ps_ = 0;
  ModuleIdentity exe_, foo_, bar_, plain_;
};

TEST_F(RegionMatcherTest, FindModuleUsesSameModuleRules) {
  SnapshotReader r;
  ASSERT_TRUE(r.open(write(standard(), 0).c_str()).ok());
  RegionMatcher m;
  ASSERT_EQ(m.init(&r, RegionMatcher::Mode::kBySite), 0);
  ASSERT_EQ(r.module_count(), 3u);
  const uint32_t foo = m.find_module(foo_);
  const uint32_t bar = m.find_module(bar_);
  const uint32_t plain = m.find_module(plain_);
  EXPECT_EQ(foo, r.region(0).site_module);
  EXPECT_EQ(bar, r.region(2).site_module);
  EXPECT_EQ(plain, r.region(5).site_module);
  EXPECT_NE(foo, bar);

  // Same build-id under another path (a library moved): still libfoo.
  ModuleIdentity moved = module("/elsewhere/libfoo.so.1", 7);
  EXPECT_EQ(m.find_module(moved), foo);
  // Same path, another build-id (the library was rebuilt): not libfoo.
  ModuleIdentity rebuilt = module("/usr/lib/libfoo.so.1", 8);
  EXPECT_EQ(m.find_module(rebuilt), kNoModule);
  // Same path, no id on the running side: compared by path.
  ModuleIdentity noid = module("/usr/lib/libfoo.so.1", 0, IdKind::kNone);
  EXPECT_EQ(m.find_module(noid), foo);
  // Same path, an id of another kind: compared by path.
  ModuleIdentity hashed = module("/usr/lib/libfoo.so.1", 200, IdKind::kContentXxh3);
  EXPECT_EQ(m.find_module(hashed), foo);
  // The recorded module has no id: path decides.
  EXPECT_EQ(m.find_module(module("/usr/lib/libplain.so", 1)), plain);
  EXPECT_EQ(m.find_module(module("/usr/lib/libplainer.so", 0, IdKind::kNone)), kNoModule);

  // The ModuleKey overload, and same_module() against a ModuleView.
  EXPECT_EQ(m.find_module(ModuleKey::of(bar_)), bar);
  EXPECT_TRUE(same_module(ModuleKey::of(bar_), r.module(bar)));
  EXPECT_FALSE(same_module(ModuleKey::of(bar_), r.module(foo)));
}

TEST_F(RegionMatcherTest, MatchesBySiteAtMostOnce) {
  SnapshotReader r;
  ASSERT_TRUE(r.open(write(standard(), 0).c_str()).ok());
  RegionMatcher m;
  ASSERT_EQ(m.init(&r, RegionMatcher::mode_for(r)), 0);
  EXPECT_EQ(m.mode(), RegionMatcher::Mode::kBySite);
  const uint32_t foo = m.find_module(foo_);
  const uint64_t p = ps_;

  EXPECT_EQ(m.lookup(site(foo, 0x1234, 0, 8 * p)), 0);
  EXPECT_EQ(m.matched_count(), 0u);  // lookup marks nothing
  EXPECT_EQ(m.match(site(foo, 0x1234, 0, 8 * p)), 0);
  EXPECT_TRUE(m.matched(0));
  EXPECT_EQ(m.matched_count(), 1u);
  // At most once.
  EXPECT_EQ(m.match(site(foo, 0x1234, 0, 8 * p)), -1);
  EXPECT_EQ(m.lookup(site(foo, 0x1234, 0, 8 * p)), 0);  // lookup ignores earlier matches
  // The next ordinal is the next region.
  EXPECT_EQ(m.match(site(foo, 0x1234, 1, 8 * p)), 1);
  EXPECT_EQ(m.match(site(foo, 0x1234, 2, 8 * p)), -1);
  EXPECT_EQ(m.matched_count(), 2u);
  EXPECT_EQ(m.unmatched_count(), 5u);
}

TEST_F(RegionMatcherTest, EveryPartOfTheIdentityCounts) {
  SnapshotReader r;
  ASSERT_TRUE(r.open(write(standard(), 0).c_str()).ok());
  RegionMatcher m;
  ASSERT_EQ(m.init(&r, RegionMatcher::Mode::kBySite), 0);
  const uint32_t foo = m.find_module(foo_);
  const uint32_t bar = m.find_module(bar_);
  const uint32_t plain = m.find_module(plain_);
  const uint64_t p = ps_;

  // Length mismatch, in both directions.
  EXPECT_EQ(m.match(site(foo, 0x1234, 0, 7 * p)), -1);
  EXPECT_EQ(m.match(site(foo, 0x1234, 0, 9 * p)), -1);
  EXPECT_EQ(m.match(site(foo, 0x1234, 0, 0)), -1);
  // Offset, ordinal, module mismatch.
  EXPECT_EQ(m.match(site(foo, 0x1235, 0, 8 * p)), -1);
  EXPECT_EQ(m.match(site(foo, 0x1234, 5, 8 * p)), -1);
  EXPECT_EQ(m.match(site(bar, 0x1234, 0, 8 * p)), -1);
  EXPECT_EQ(m.match(site(kNoModule, 0, 0, 4 * p)), -1);  // unknown site never matches
  EXPECT_EQ(m.matched_count(), 0u);

  // Lengths compare rounded to pages: an mmap of 8 pages minus a few bytes is 8 pages.
  EXPECT_EQ(m.match(site(foo, 0x1234, 0, 8 * p - 17)), 0);
  // Region 5 was allocated with 3 pages - 100 bytes.
  EXPECT_EQ(m.match(site(plain, 0x40, 0, 3 * p)), 5);

  // A trimmed region (2 of its 4 allocated pages left) never matches: neither the allocation
  // length nor the remaining length.
  EXPECT_EQ(m.match(site(foo, 0x5000, 0, 4 * p)), -1);
  EXPECT_EQ(m.match(site(foo, 0x5000, 0, 2 * p)), -1);

  // Two regions with one identity (no real capture has them: each mapping of a site has an
  // ordinal of its own): the first matches, once; the other never does.
  EXPECT_EQ(m.match(site(bar, 0x1234, 0, 4 * p)), 2);
  EXPECT_EQ(m.match(site(bar, 0x1234, 0, 4 * p)), -1);

  // Unmatched at the end: 1 (never asked), 3 (trimmed), 4 (unknown site), 6 (a second identity).
  std::vector<int64_t> unmatched;
  for (int64_t i = m.next_unmatched(0); i >= 0; i = m.next_unmatched(uint64_t(i) + 1)) unmatched.push_back(i);
  EXPECT_EQ(unmatched, (std::vector<int64_t>{1, 3, 4, 6}));
  EXPECT_EQ(m.matched_count(), 3u);
  EXPECT_EQ(m.unmatched_count(), 4u);
  EXPECT_FALSE(m.matched(1));
  EXPECT_TRUE(m.matched(5));
  EXPECT_FALSE(m.matched(99));
}

TEST_F(RegionMatcherTest, WithoutAslrTheAddressMustAgreeToo) {
  SnapshotReader r;
  ASSERT_TRUE(r.open(write(standard(), kFlagNoAslr).c_str()).ok());
  RegionMatcher m;
  ASSERT_EQ(m.init(&r, RegionMatcher::mode_for(r)), 0);
  EXPECT_EQ(m.mode(), RegionMatcher::Mode::kByAddress);
  const uint32_t foo = m.find_module(foo_), bar = m.find_module(bar_), plain = m.find_module(plain_);
  const uint64_t p = ps_;
  auto at = [&](uint64_t start, MappingQuery q) {
    q.start = start;
    return q;
  };

  // The whole identity and the address: a match, once.
  EXPECT_EQ(m.match(at(0x7f0000100000, site(foo, 0x1234, 1, 8 * p))), 1);
  EXPECT_EQ(m.match(at(0x7f0000100000, site(foo, 0x1234, 1, 8 * p))), -1);
  // The right identity somewhere else, or the right address with another identity: never. A
  // layout that shifted would otherwise hand a mapping another region's content.
  EXPECT_EQ(m.match(at(0x7f0000000000 + p, site(foo, 0x1234, 0, 8 * p))), -1);
  EXPECT_EQ(m.match(at(0x7f0000000000, site(foo, 0x1234, 1, 8 * p))), -1);
  EXPECT_EQ(m.match(at(0x7f0000000000, site(foo, 0x9999, 0, 8 * p))), -1);
  EXPECT_EQ(m.match(at(0x7f0000000000, site(foo, 0x1234, 0, 4 * p))), -1);
  // Another prot or other flags: not the same mapping either.
  MappingQuery ro = at(0x7f0000000000, site(foo, 0x1234, 0, 8 * p));
  ro.prot = PROT_READ;
  EXPECT_EQ(m.match(ro), -1);
  MappingQuery noreserve = at(0x7f0000000000, site(foo, 0x1234, 0, 8 * p));
  noreserve.flags |= MAP_NORESERVE;
  EXPECT_EQ(m.match(noreserve), -1);
  EXPECT_EQ(m.match(at(0x7f0000000000, site(foo, 0x1234, 0, 8 * p - 17))), 0);
  // An unknown site never matches, a trimmed region neither.
  EXPECT_EQ(m.match(at(0x7f0000400000, site(kNoModule, 0, 0, 4 * p))), -1);
  EXPECT_EQ(m.match(at(0x7f0000300000, site(foo, 0x5000, 0, 4 * p))), -1);
  EXPECT_EQ(m.match(at(0x7f0000600000, site(bar, 0x1234, 0, 4 * p))), 6);
  EXPECT_EQ(m.match(at(0x7f0000500000, site(plain, 0x40, 0, 3 * p))), 5);

  std::vector<int64_t> unmatched;
  for (int64_t i = m.next_unmatched(0); i >= 0; i = m.next_unmatched(uint64_t(i) + 1)) unmatched.push_back(i);
  EXPECT_EQ(unmatched, (std::vector<int64_t>{2, 3, 4}));
}

// A crafted snapshot of many regions with one identity costs no more to set up than any other.
TEST_F(RegionMatcherTest, ManyRegionsWithOneIdentityStayLinear) {
  const uint64_t p = ps_;
  std::vector<Spec> specs(20000, Spec{0x10000000, p, &foo_, 0x40, 0, p});
  SnapshotReader r;
  ASSERT_TRUE(r.open(write(specs, 0).c_str()).ok());
  RegionMatcher m;
  ASSERT_EQ(m.init(&r, RegionMatcher::Mode::kBySite), 0);
  const uint32_t foo = m.find_module(foo_);
  EXPECT_EQ(m.match(site(foo, 0x40, 0, p)), 0);
  EXPECT_EQ(m.match(site(foo, 0x40, 0, p)), -1);
  EXPECT_EQ(m.matched_count(), 1u);
}

TEST_F(RegionMatcherTest, ManyRegionsAndReinit) {
  std::vector<Spec> specs;
  const uint64_t p = ps_;
  for (uint64_t i = 0; i < 1000; i++) specs.push_back({0x10000000 + i * 16 * p, (i % 5 + 1) * p, &foo_, 0x100 + i % 7, i / 7, (i % 5 + 1) * p});
  SnapshotReader r;
  ASSERT_TRUE(r.open(write(specs, 0).c_str()).ok());
  RegionMatcher m;
  ASSERT_EQ(m.init(&r, RegionMatcher::Mode::kBySite), 0);
  const uint32_t foo = m.find_module(foo_);
  for (uint64_t i = 0; i < 1000; i += 3) ASSERT_EQ(m.match(site(foo, 0x100 + i % 7, i / 7, (i % 5 + 1) * p)), int64_t(i)) << i;
  EXPECT_EQ(m.matched_count(), 334u);
  EXPECT_EQ(m.next_unmatched(0), 1);
  EXPECT_EQ(m.next_unmatched(999), -1);

  // init again forgets the matches; by address now.
  ASSERT_EQ(m.init(&r, RegionMatcher::Mode::kByAddress), 0);
  EXPECT_EQ(m.matched_count(), 0u);
  MappingQuery q;
  for (uint64_t i = 0; i < 1000; i++) {
    q = site(foo, 0x100 + i % 7, i / 7, (i % 5 + 1) * p);
    q.start = 0x10000000 + i * 16 * p;
    ASSERT_EQ(m.match(q), int64_t(i)) << i;
  }
  EXPECT_EQ(m.unmatched_count(), 0u);
  EXPECT_EQ(m.next_unmatched(0), -1);

  m.release();
  EXPECT_EQ(m.match(q), -1);
  RegionMatcher bad;
  EXPECT_EQ(bad.init(nullptr, RegionMatcher::Mode::kBySite), -EINVAL);
}

}  // namespace
