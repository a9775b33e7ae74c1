// The region list against a plain sorted vector, under long runs of random changes: same regions,
// same pieces handed out, same answers to every lookup, and the tree's own invariants after each
// change.
#include "core/monitor/region_list.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <vector>

namespace uffdlazy {
namespace {

constexpr uint64_t P = 4096;

bool same(const Region& a, const Region& b) {
  return a.start == b.start && a.end == b.end && a.id == b.id && a.source == b.source &&
         a.source_page == b.source_page;
}

// The obvious implementation: a sorted vector, linear everything.
class Model {
 public:
  explicit Model(size_t capacity) : capacity_(capacity) {}
  const std::vector<Region>& items() const { return v_; }
  bool overlaps_any(uintptr_t s, uintptr_t e) const {
    for (const Region& r : v_) {
      if (r.overlaps(s, e)) return true;
    }
    return false;
  }
  bool insert(const Region& r) {
    if (v_.size() == capacity_ || overlaps_any(r.start, r.end)) return false;
    v_.insert(std::upper_bound(v_.begin(), v_.end(), r, [](const Region& a, const Region& b) { return a.start < b.start; }),
              r);
    return true;
  }
  bool cut(uintptr_t s, uintptr_t e, std::vector<Region>* pieces, Region* lost) {
    std::vector<Region> out;
    bool ok = true;
    for (const Region& r : v_) {
      if (!r.overlaps(s, e)) {
        out.push_back(r);
        continue;
      }
      pieces->push_back(r.clipped(s, e, P));
      if (r.start < s) out.push_back(r.clipped(r.start, s, P));
      if (r.end > e) {
        // The split needs one more entry than there was.
        if (r.start < s && v_.size() == capacity_) {
          ok = false;
          *lost = r.clipped(e, r.end, P);
        } else {
          out.push_back(r.clipped(e, r.end, P));
        }
      }
    }
    v_ = out;
    return ok;
  }
  bool extend(uintptr_t start, uintptr_t old_end, uintptr_t new_end) {
    for (size_t i = 0; i < v_.size(); i++) {
      if (!v_[i].contains(old_end - 1)) continue;
      if (v_[i].end != old_end || v_[i].start > start) return false;
      if (i + 1 < v_.size() && v_[i + 1].start < new_end) return false;
      v_[i].end = new_end;
      return true;
    }
    return false;
  }
  void merge_neighbours(uintptr_t start) {
    auto continues = [](const Region& a, const Region& b) {
      return a.end == b.start && a.id == b.id && a.source == b.source &&
             (a.source == Region::kZeroSource || a.source_page + (a.end - a.start) / P == b.source_page);
    };
    for (size_t i = 0; i < v_.size(); i++) {
      if (!v_[i].contains(start)) continue;
      if (i + 1 < v_.size() && continues(v_[i], v_[i + 1])) {
        v_[i].end = v_[i + 1].end;
        v_.erase(v_.begin() + long(i) + 1);
      }
      if (i > 0 && continues(v_[i - 1], v_[i])) {
        v_[i - 1].end = v_[i].end;
        v_.erase(v_.begin() + long(i));
      }
      return;
    }
  }

 private:
  size_t capacity_;
  std::vector<Region> v_;
};

void expect_same(const RegionList& list, const Model& model, std::mt19937_64& rng, uintptr_t span) {
  ASSERT_TRUE(list.well_formed());
  const auto& v = model.items();
  ASSERT_EQ(list.size(), v.size());
  size_t i = 0;
  for (RegionList::Pos p = list.first(); p != RegionList::kNone; p = list.next(p), i++) {
    ASSERT_TRUE(same(list.get(p), v[i])) << "position " << i;
    ASSERT_TRUE(same(list.at(i), v[i])) << "index " << i;
    if (i > 0) {
      ASSERT_TRUE(same(list.get(list.prev(p)), v[i - 1]));
    }
  }
  ASSERT_EQ(i, v.size());
  for (int probe = 0; probe < 8; probe++) {
    const uintptr_t a = rng() % span;
    long want = -1;
    size_t lb = v.size();
    for (size_t j = 0; j < v.size(); j++) {
      if (v[j].contains(a)) want = long(j);
      if (lb == v.size() && v[j].end > a) lb = j;
    }
    ASSERT_EQ(list.find(a), want) << "address " << a;
    ASSERT_EQ(list.lower_bound(a), lb) << "address " << a;
    const RegionList::Pos p = list.find_pos(a);
    ASSERT_EQ(p == RegionList::kNone, want < 0);
    if (p != RegionList::kNone) {
      ASSERT_TRUE(same(list.get(p), v[size_t(want)]));
    }
    const uintptr_t e = a + 1 + rng() % (span / 8);
    ASSERT_EQ(list.overlaps_any(a, e), model.overlaps_any(a, e));
  }
}

Region random_region(std::mt19937_64& rng, uintptr_t pages) {
  Region r = {};
  const uintptr_t start = rng() % pages;
  r.start = start * P;
  r.end = (start + 1 + rng() % 8) * P;
  r.id = uint32_t(rng() % 4);  // few ids, so that neighbours often merge
  r.source = rng() % 3 == 0 ? Region::kZeroSource : int32_t(rng() % 2);
  r.source_page = rng() % 64;
  return r;
}

void run_random(uint64_t seed, size_t capacity, uintptr_t pages, int steps) {
  std::mt19937_64 rng(seed);
  RegionList list;
  ASSERT_TRUE(list.init(capacity));
  Model model(capacity);
  for (int step = 0; step < steps; step++) {
    SCOPED_TRACE(testing::Message() << "seed " << seed << " step " << step);
    switch (rng() % 6) {
      case 0:
      case 1: {
        const Region r = random_region(rng, pages);
        ASSERT_EQ(list.insert(r), model.insert(r));
        break;
      }
      case 2: {
        const uintptr_t s = (rng() % pages) * P;
        const uintptr_t e = s + (1 + rng() % 12) * P;
        std::vector<Region> got, want;
        Region lost_got = {}, lost_want = {};
        const bool ok = list.cut(s, e, P, [&](const Region& r) { got.push_back(r); }, &lost_got);
        ASSERT_EQ(ok, model.cut(s, e, &want, &lost_want));
        if (!ok) {
          ASSERT_TRUE(same(lost_got, lost_want));
        }
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); i++) ASSERT_TRUE(same(got[i], want[i]));
        break;
      }
      case 3: {
        if (model.items().empty()) break;
        const Region& r = model.items()[rng() % model.items().size()];
        const uintptr_t new_end = r.end + (1 + rng() % 4) * P;
        const uintptr_t start = r.start, end = r.end;
        ASSERT_EQ(list.extend(start, end, new_end), model.extend(start, end, new_end));
        break;
      }
      case 4: {
        if (model.items().empty()) break;
        const uintptr_t start = model.items()[rng() % model.items().size()].start;
        list.merge_neighbours(start, P);
        model.merge_neighbours(start);
        break;
      }
      case 5:
        if (rng() % 50 == 0) {
          list.clear();
          model = Model(capacity);
        }
        break;
    }
    expect_same(list, model, rng, (pages + 16) * P);
  }
  list.release();
}

TEST(RegionList, MatchesASortedVectorUnderRandomChanges) {
  for (uint64_t seed = 1; seed <= 12; seed++) run_random(seed, 256, 600, 1500);
}

// A small pool that fills up: a split that needs a node the pool does not have loses exactly the
// piece right of the cut, as the vector does.
TEST(RegionList, FullPoolLosesOnlyThePieceRightOfACut) {
  for (uint64_t seed = 100; seed < 106; seed++) run_random(seed, 12, 120, 1500);
}

// Removed nodes are reused: a list of 32 takes any number of inserts and removals.
TEST(RegionList, ReusesTheNodesOfRemovedRegions) {
  RegionList list;
  ASSERT_TRUE(list.init(32));
  for (uintptr_t round = 0; round < 200; round++) {
    for (uintptr_t i = 0; i < 32; i++) {
      Region r = {};
      r.start = (round * 1000 + i * 2) * P;
      r.end = r.start + P;
      ASSERT_TRUE(list.insert(r)) << "round " << round << " region " << i;
    }
    Region extra = {};
    extra.start = (round * 1000 + 500) * P;
    extra.end = extra.start + P;
    EXPECT_FALSE(list.insert(extra));
    EXPECT_TRUE(list.cut(round * 1000 * P, (round * 1000 + 64) * P, P, [](const Region&) {}));
    ASSERT_EQ(list.size(), 0u);
    ASSERT_TRUE(list.well_formed());
  }
  list.release();
}

// Addresses arriving in order (as mmap hands them out, top down) would make a plain search tree a
// list; the treap stays shallow: 60000 inserts and as many removals finish, each O(log n).
TEST(RegionList, StaysBalancedWhenAddressesComeInOrder) {
  RegionList list;
  constexpr uintptr_t kN = 60000;
  ASSERT_TRUE(list.init(kN));
  for (uintptr_t i = 0; i < kN; i++) {
    Region r = {};
    r.start = (kN - i) * 2 * P;
    r.end = r.start + P;
    ASSERT_TRUE(list.insert(r));
  }
  ASSERT_EQ(list.size(), kN);
  EXPECT_EQ(list.at(0).start, 2 * P);
  EXPECT_EQ(list.lower_bound(kN * P + 1), kN / 2 - 1);  // region k (from 1) starts at 2kP
  ASSERT_TRUE(list.well_formed());
  for (uintptr_t i = 0; i < kN; i++) list.cut((i + 1) * 2 * P, (i + 1) * 2 * P + P, P, [](const Region&) {});
  EXPECT_EQ(list.size(), 0u);
  list.release();
}

// A forked child finds the list's pool wiped (it is not copied) and starts over with clear().
TEST(RegionList, ForkedChildStartsFromAClearedList) {
  RegionList list;
  ASSERT_TRUE(list.init(1024));
  for (uintptr_t i = 0; i < 500; i++) {
    Region r = {};
    r.start = (i * 2 + 1) * P;
    r.end = r.start + P;
    ASSERT_TRUE(list.insert(r));
  }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    list.clear();
    Region r = {};
    r.start = 4 * P;
    r.end = 5 * P;
    const bool ok = list.size() == 0 && list.insert(r) && list.size() == 1 && list.find(4 * P) == 0 && list.well_formed();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(list.size(), 500u);
  EXPECT_TRUE(list.well_formed());
  list.release();
}

}  // namespace
}  // namespace uffdlazy
