#include "core/monitor/region_table.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace uffdlazy {
namespace {

constexpr uint64_t P = 4096;

Region make(uintptr_t s, uintptr_t e, int32_t source = 0, uint64_t source_page = 0) {
  Region r = {};
  r.start = s;
  r.end = e;
  r.source = source;
  r.source_page = source_page;
  return r;
}

class RegionTableTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(t.init(64, 16, P)); }
  void TearDown() override { t.release(); }
  RegionTable t;
};

TEST_F(RegionTableTest, LookupFindsTheSourcePageOfEachAddress) {
  t.mapped(10 * P, 20 * P);
  ASSERT_TRUE(t.insert(make(10 * P, 20 * P, 3, 100)));
  Region r;
  ASSERT_TRUE(t.lookup(15 * P + 7, &r));
  EXPECT_EQ(r.source, 3);
  EXPECT_EQ(r.source_page + (15 * P - r.start) / P, 105u);
  EXPECT_FALSE(t.lookup(20 * P, &r));
  EXPECT_FALSE(t.lookup(9 * P, &r));
}

TEST_F(RegionTableTest, UnmapOfTheMiddleSplitsAndShiftsSourcePages) {
  t.insert(make(10 * P, 20 * P, 1, 0));
  t.unmapped(12 * P, 14 * P);
  Region r;
  EXPECT_FALSE(t.lookup(13 * P, &r));
  ASSERT_TRUE(t.lookup(14 * P, &r));
  EXPECT_EQ(r.start, 14 * P);
  EXPECT_EQ(r.source_page, 4u);
  ASSERT_TRUE(t.lookup(11 * P, &r));
  EXPECT_EQ(r.end, 12 * P);
  EXPECT_EQ(r.source_page, 0u);
}

TEST_F(RegionTableTest, MoveCarriesStateAndItsTrailingUnmapHitsNothingNew) {
  t.insert(make(10 * P, 20 * P, 2, 50));
  t.moved(10 * P, 100 * P, 10 * P);
  Region r;
  ASSERT_TRUE(t.lookup(105 * P, &r));
  EXPECT_EQ(r.source, 2);
  EXPECT_EQ(r.source_page + 5, 55u);
  EXPECT_FALSE(t.lookup(15 * P, &r));
  // A new mapping takes the old address before the kernel's UNMAP of the old range is read.
  t.mapped(10 * P, 20 * P);
  t.insert(make(10 * P, 20 * P, 7, 0));
  t.unmapped(10 * P, 20 * P);  // the move's own trailing UNMAP
  ASSERT_TRUE(t.lookup(15 * P, &r)) << "the late UNMAP must not destroy the newer mapping";
  EXPECT_EQ(r.source, 7);
  // A later UNMAP is about the new mapping.
  t.unmapped(10 * P, 20 * P);
  EXPECT_FALSE(t.lookup(15 * P, &r));
}

TEST_F(RegionTableTest, StaleEntryGoesToLimboAndAbsorbsItsPendingUnmap) {
  t.insert(make(10 * P, 20 * P, 1, 0));
  // munmap happened in the kernel, its event is unread, and a new mapping reuses the address.
  t.mapped(10 * P, 20 * P);
  t.insert(make(10 * P, 20 * P, Region::kZeroSource, 0));
  Region r;
  ASSERT_TRUE(t.lookup(12 * P, &r));
  EXPECT_EQ(r.source, Region::kZeroSource) << "faults see the new mapping, never the stale state";
  EXPECT_EQ(t.limbo().size(), 1u);
  t.unmapped(10 * P, 20 * P);  // the old munmap's event arrives
  EXPECT_EQ(t.limbo().size(), 0u);
  ASSERT_TRUE(t.lookup(12 * P, &r));
  EXPECT_EQ(r.source, Region::kZeroSource);
}

TEST_F(RegionTableTest, StaleEntryThatWasMovedKeepsItsStateThroughLimbo) {
  t.insert(make(10 * P, 20 * P, 4, 0));
  // mremap moved it away; a new mapping landed at the old address before REMAP was read.
  t.mapped(10 * P, 20 * P);
  t.insert(make(10 * P, 20 * P, Region::kZeroSource, 0));
  t.moved(10 * P, 50 * P, 10 * P);
  t.unmapped(10 * P, 20 * P);
  Region r;
  ASSERT_TRUE(t.lookup(55 * P, &r));
  EXPECT_EQ(r.source, 4);
  EXPECT_EQ(r.source_page, 0u);
  ASSERT_TRUE(t.lookup(12 * P, &r));
  EXPECT_EQ(r.source, Region::kZeroSource);
}

TEST_F(RegionTableTest, GrowInPlaceExtendsTheRegion) {
  t.insert(make(10 * P, 20 * P, 1, 0));
  EXPECT_TRUE(t.grew(10 * P, 20 * P, 30 * P));
  Region r;
  ASSERT_TRUE(t.lookup(25 * P, &r));
  EXPECT_EQ(r.end, 30 * P);
}

TEST_F(RegionTableTest, RemoveReachesLiveAndLimbo) {
  t.insert(make(10 * P, 20 * P, 1, 0));
  t.mapped(15 * P, 16 * P);  // part of it went stale
  int pieces = 0;
  uint64_t pages = 0;
  t.for_each_piece_an_event_reaches(10 * P, 20 * P, [&](const Region& r) {
    pieces++;
    pages += r.length() / P;
  });
  EXPECT_EQ(pieces, 3);
  EXPECT_EQ(pages, 10u);
}

// A REMOVE for the old mapping, read before and applied after a new mapping took its place, must
// not drop the new mapping's state: where limbo covers the range, the event is about limbo only.
TEST_F(RegionTableTest, RemoveForAnOldMappingNeverReachesTheNewOne) {
  t.insert(make(10 * P, 20 * P, 1, 0));
  t.mapped(12 * P, 14 * P);
  t.insert(make(12 * P, 14 * P, 7, 100));  // the new mapping, source 7
  std::vector<int32_t> sources;
  t.for_each_piece_an_event_reaches(10 * P, 20 * P, [&](const Region& r) { sources.push_back(r.source); });
  ASSERT_EQ(sources.size(), 3u);
  for (int32_t s : sources) EXPECT_NE(s, 7) << "the new mapping's pages would be dropped";
}

TEST_F(RegionTableTest, GrowThatMovesKeepsTheTailWithItsRegion) {
  t.insert(make(10 * P, 20 * P, 1, 0));
  t.moved(10 * P, 100 * P, 10 * P);
  Region m;
  ASSERT_TRUE(t.note_applied_move(10 * P, 100 * P, 10 * P, 15 * P, false, &m));
  Region r;
  ASSERT_TRUE(t.lookup(112 * P, &r));
  EXPECT_EQ(r.start, 100 * P);
  EXPECT_EQ(r.end, 115 * P) << "tail and moved part are one region";
  EXPECT_EQ(r.source_page, 0u);
  t.unmapped(10 * P, 20 * P);  // the UNMAP that follows the move: the tombstone takes it
  EXPECT_EQ(t.limbo().size(), 0u);
  ASSERT_TRUE(t.lookup(100 * P, &r));
}

TEST_F(RegionTableTest, DontUnmapMoveLeavesNoTombstoneToSwallowALaterUnmap) {
  t.insert(make(10 * P, 20 * P, 1, 0));
  t.moved(10 * P, 50 * P, 10 * P);
  Region m;
  ASSERT_TRUE(t.note_applied_move(10 * P, 50 * P, 10 * P, 10 * P, true, &m));
  EXPECT_EQ(t.limbo().size(), 0u);
  Region r;
  ASSERT_TRUE(t.lookup(55 * P, &r));
}

// A move of a mapping the table does not know (unregistered: no REMAP came) is not ours, even
// when a region of ours happens to start at the destination.
TEST_F(RegionTableTest, MoveOfAnUnregisteredMappingIsNotOurs) {
  t.insert(make(50 * P, 60 * P, 1, 0));
  Region m;
  EXPECT_FALSE(t.note_applied_move(10 * P, 50 * P, 10 * P, 10 * P, true, &m));
  EXPECT_FALSE(t.note_applied_move(10 * P, 70 * P, 10 * P, 12 * P, false, &m));
}

// One VMA the kernel moves can hold many regions (adjacent mappings with the same attributes
// share a VMA): every one of them arrives, with its source pages, however many there are.
TEST_F(RegionTableTest, MoveOfManyRegionsCarriesEveryOne) {
  for (uintptr_t i = 0; i < 40; i++) ASSERT_TRUE(t.insert(make((100 + i) * P, (101 + i) * P, int32_t(i), 7 * i)));
  t.moved(100 * P, 1000 * P, 40 * P);
  for (uintptr_t i = 0; i < 40; i++) {
    Region r;
    ASSERT_TRUE(t.lookup((1000 + i) * P, &r)) << "region " << i << " was lost in the move";
    EXPECT_EQ(r.source, int32_t(i));
    EXPECT_EQ(r.source_page + ((1000 + i) * P - r.start) / P, 7 * i);
    EXPECT_FALSE(t.lookup((100 + i) * P, &r));
  }
  EXPECT_EQ(t.dropped_pieces(), 0u);
  EXPECT_EQ(t.lost_sourced(), 0u);
}

// A new mapping over many stale regions sends each to limbo, so the kernel's late UNMAP for the
// old range reaches them and never the new region.
TEST(RegionTableMany, NewMappingOverManyStaleRegionsKeepsTheirLateUnmapAway) {
  RegionTable t;
  ASSERT_TRUE(t.init(256, 256, P));
  for (uintptr_t i = 0; i < 40; i++) ASSERT_TRUE(t.insert(make((100 + i) * P, (101 + i) * P, int32_t(i), 0)));
  t.mapped(100 * P, 140 * P);
  ASSERT_TRUE(t.insert(make(100 * P, 140 * P, 99, 0)));
  t.unmapped(100 * P, 140 * P);  // the old mappings' event, read late
  Region r;
  ASSERT_TRUE(t.lookup(120 * P, &r));
  EXPECT_EQ(r.source, 99);
  EXPECT_EQ(r.start, 100 * P);
  EXPECT_EQ(r.end, 140 * P);
  EXPECT_EQ(t.dropped_pieces(), 0u);
  t.release();
}

TEST(RegionTableFull, LostPieceOfARestoredRegionIsReported) {
  RegionTable t;
  ASSERT_TRUE(t.init(1, 4, P));
  ASSERT_TRUE(t.insert(make(10 * P, 20 * P, 3, 100)));
  t.unmapped(12 * P, 13 * P);
  //LS1
  const Region& lost = t.lost_piece(0);
  EXPECT_EQ(lost.start, 13 * P);
  EXPECT_EQ(lost.end, 20 * P);
  EXPECT_EQ(lost.source, 3);
  EXPECT_EQ(lost.source_page, 103u);
  // A region without a source losing a piece loses nothing anyone needs: zeros are its content.
  RegionTable z;
  ASSERT_TRUE(z.init(1, 4, P));
  ASSERT_TRUE(z.insert(make(10 * P, 20 * P, Region::kZeroSource, 0)));
  z.unmapped(12 * P, 13 * P);
  EXPECT_EQ(z.lost_sourced(), 0u);
  t.release();
  z.release();
}

// Long runs of random mappings, unmaps, moves and growth, in the orders the interposers and the
// kernel's events can produce them: both lists stay well-formed search trees of non-overlapping
// regions, every lookup agrees with a walk of the live list, and a tombstone never serves a page.
TEST(RegionTableRandom, ListsStayWellFormedUnderRandomChanges) {
  std::mt19937_64 rng(7);
  RegionTable t;
  ASSERT_TRUE(t.init(128, 32, P));
  for (int step = 0; step < 6000; step++) {
    SCOPED_TRACE(step);
    const uintptr_t s = (rng() % 400) * P, len = (1 + rng() % 16) * P;
    switch (rng() % 7) {
      case 0:
      case 1: {
        t.mapped(s, s + len);
        Region r = make(s, s + len, rng() % 2 ? Region::kZeroSource : int32_t(rng() % 4), rng() % 100);
        t.insert(r);
        break;
      }
      case 2: t.unmapped(s, s + len); break;
      case 3: t.moved(s, (rng() % 400) * P, len); break;
      case 4: t.grew(s, s + len, s + len + (1 + rng() % 4) * P); break;
      case 5: t.forget(s, s + len); break;
      case 6: {
        Region m;
        t.note_applied_move(s, (rng() % 400) * P, len, len + (rng() % 3) * P, rng() % 2, &m);
        break;
      }
    }
    ASSERT_TRUE(t.live().well_formed());
    ASSERT_TRUE(t.limbo().well_formed());
    for (size_t i = 0; i < t.live().size(); i++) {
      const Region& r = t.live().at(i);
      ASSERT_NE(r.id, 0u) << "a tombstone is live";
      Region found;
      ASSERT_TRUE(t.lookup(r.start, &found));
      ASSERT_EQ(found.start, r.start);
      ASSERT_TRUE(t.lookup(r.end - 1, &found));
      ASSERT_EQ(found.end, r.end);
    }
  }
  t.release();
}

}  // namespace
}  // namespace uffdlazy
