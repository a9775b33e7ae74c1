// ReadaheadWindow: how far ahead a snapshot fault reads. Sequential faults double the window up to
// the cap, faults elsewhere halve the next new window down to one page, a window never passes its
// region, streams of different threads keep their own windows, and the part left to the
// background (pending) ends where it is stopped.
#include "core/monitor/fault_policy.h"

#include <gtest/gtest.h>

namespace uffdlazy {
namespace {

constexpr uint64_t kPs = 4096;
constexpr uintptr_t kBase = 0x7f0000000000;
constexpr uintptr_t kEnd = kBase + (1u << 20) * kPs;  // a region of 1M pages

uintptr_t page(uint64_t i) { return kBase + i * kPs; }

TEST(ReadaheadWindow, SequentialFaultsDoubleTheWindowUpToTheCap) {
  ReadaheadWindow w;
  w.init(256, kPs);
  uint32_t pages = 0;
  uint64_t at = 0;
  const uint32_t expected[] = {16, 32, 64, 128, 256, 256, 256};
  for (uint32_t want : expected) {
    uint32_t s = w.on_fault(page(at), kEnd, &pages);
    EXPECT_EQ(pages, want) << "fault at page " << at;
    w.advanced(s, page(at + pages));  // everything installed: the next fault is at the window's end
    at += pages;
  }
}

TEST(ReadaheadWindow, FaultsCaughtUpInsideTheWindowCountAsSequential) {
  ReadaheadWindow w;
  w.init(1024, kPs);
  uint32_t pages = 0;
  uint32_t s = w.on_fault(page(0), kEnd, &pages);
  ASSERT_EQ(pages, 16u);
  w.advanced(s, page(4));  // the background had installed 4 pages when the program caught up
  w.on_fault(page(4), kEnd, &pages);
  EXPECT_EQ(pages, 32u);
}

TEST(ReadaheadWindow, RandomFaultsShrinkNewWindowsToOnePage) {
  ReadaheadWindow w;
  w.init(1024, kPs);
  uint32_t pages = 0;
  const uint32_t expected[] = {16, 8, 4, 2, 1, 1, 1};
  uint64_t at = 1000;
  for (uint32_t want : expected) {
    w.on_fault(page(at), kEnd, &pages);
    EXPECT_EQ(pages, want) << "fault at page " << at;
    at += 5000;  // far from every window
  }
  // A scan starting now ramps up again from one page, and new windows grow back.
  uint32_t s = w.on_fault(page(at), kEnd, &pages);
  EXPECT_EQ(pages, 1u);
  w.advanced(s, page(at + 1));
  w.on_fault(page(at + 1), kEnd, &pages);
  EXPECT_EQ(pages, 2u);
  w.on_fault(page(at + 90000), kEnd, &pages);
  EXPECT_EQ(pages, 2u) << "one sequential hit doubles the next new window";
}

TEST(ReadaheadWindow, TheSameFaultAgainDoesNotGrowTheWindow) {
  // A fault retried after an event (EAGAIN) arrives at the window's own first page.
  ReadaheadWindow w;
  w.init(1024, kPs);
  uint32_t pages = 0;
  w.on_fault(page(10), kEnd, &pages);
  ASSERT_EQ(pages, 16u);
  w.on_fault(page(10), kEnd, &pages);
  EXPECT_EQ(pages, 16u);
}

TEST(ReadaheadWindow, NeverPastTheRegionEnd) {
  ReadaheadWindow w;
  w.init(1024, kPs);
  uint32_t pages = 0;
  w.on_fault(page(95), page(100), &pages);
  EXPECT_EQ(pages, 5u);
  uint32_t s;
  uintptr_t from, end;
  ASSERT_TRUE(w.pending(&s, &from, &end));
  EXPECT_EQ(end, page(100));
  w.on_fault(page(99), page(100), &pages);
  EXPECT_EQ(pages, 1u);
}

TEST(ReadaheadWindow, CapOfOnePageMeansNoReadahead) {
  ReadaheadWindow w;
  w.init(1, kPs);
  uint32_t pages = 0;
  for (uint64_t i = 0; i < 5; i++) {
    uint32_t s = w.on_fault(page(i), kEnd, &pages);
    EXPECT_EQ(pages, 1u);
    w.advanced(s, page(i + 1));
  }
}

TEST(ReadaheadWindow, InterleavedStreamsKeepTheirOwnWindows) {
  ReadaheadWindow w;
  w.init(1024, kPs);
  uint32_t pa = 0, pb = 0;
  uint64_t a = 0, b = 500000;
  uint32_t sa = w.on_fault(page(a), kEnd, &pa);
  uint32_t sb = w.on_fault(page(b), kEnd, &pb);
  EXPECT_NE(sa, sb);
  EXPECT_EQ(pa, 16u);
  EXPECT_EQ(pb, 8u);  // a second new stream: faults elsewhere shrink new windows
  for (int round = 0; round < 3; round++) {
    w.advanced(sa, page(a + pa));
    w.advanced(sb, page(b + pb));
    a += pa;
    b += pb;
    uint32_t na, nb;
    w.on_fault(page(a), kEnd, &na);
    w.on_fault(page(b), kEnd, &nb);
    EXPECT_EQ(na, pa * 2);
    EXPECT_EQ(nb, pb * 2);
    pa = na;
    pb = nb;
  }
}

TEST(ReadaheadWindow, PendingIsTheRestOfTheMostRecentWindowUntilStopped) {
  ReadaheadWindow w;
  w.init(1024, kPs);
  uint32_t s, pages;
  uintptr_t from, end;
  EXPECT_FALSE(w.pending(&s, &from, &end));
  uint32_t s1 = w.on_fault(page(0), kEnd, &pages);
  w.advanced(s1, page(4));
  uint32_t s2 = w.on_fault(page(900000), kEnd, &pages);
  w.advanced(s2, page(900001));
  ASSERT_TRUE(w.pending(&s, &from, &end));
  EXPECT_EQ(s, s2);
  EXPECT_EQ(from, page(900001));
  EXPECT_EQ(end, page(900000 + pages));
  // The page after the last installed one is not owed: that stream is done.
  w.stop(s2, page(900001));
  ASSERT_TRUE(w.pending(&s, &from, &end));
  EXPECT_EQ(s, s1);
  EXPECT_EQ(from, page(4));
  EXPECT_EQ(end, page(16));
  w.advanced(s1, page(16));
  EXPECT_FALSE(w.pending(&s, &from, &end));
  // A stop before what was installed never moves `next` backwards past the installed part.
  uint32_t s3 = w.on_fault(page(16), kEnd, &pages);
  w.advanced(s3, page(20));
  w.stop(s3, page(18));
  EXPECT_FALSE(w.pending(&s, &from, &end));
}

}  // namespace
}  // namespace uffdlazy
