// The monitor's queue of read-but-unanswered faults: one entry per waiting page, merged repeats,
// a full queue reported (never silently dropping), compaction under load that never drains, and
// FIFO order throughout, against a plain model under random use.
#include "core/monitor/fault_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>

namespace uffdlazy {
namespace {

constexpr uint64_t kPage = 4096;

PendingFault fault(uint64_t page, uint64_t offset = 0, uint64_t flags = 0) {
  return PendingFault{page * kPage + offset, flags, 0, 0, 0};
}

TEST(FaultQueue, OneEntryPerWaitingPageWithRepeatsMerged) {
  FaultQueue q;
  ASSERT_TRUE(q.init(4, kPage));
  EXPECT_EQ(q.add(fault(7)), FaultQueue::Added::kQueued);
  EXPECT_EQ(q.add(fault(7, 100, 1)), FaultQueue::Added::kMerged);  // same page, a write
  EXPECT_EQ(q.add(fault(8)), FaultQueue::Added::kQueued);
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front().address, 7 * kPage);
  EXPECT_EQ(q.front().repeats, 1u);
  EXPECT_EQ(q.front().flags, 1u);  // answered as a write
  q.release();
}

TEST(FaultQueue, FullQueueSaysSoAndKeepsWhatItHolds) {
  FaultQueue q;
  ASSERT_TRUE(q.init(4, kPage));
  for (uint64_t p = 0; p < 4; p++) ASSERT_EQ(q.add(fault(p)), FaultQueue::Added::kQueued);
  EXPECT_EQ(q.add(fault(99)), FaultQueue::Added::kFull);
  // A page already waiting still merges when full.
  EXPECT_EQ(q.add(fault(2)), FaultQueue::Added::kMerged);
  for (uint64_t p = 0; p < 4; p++) {
    ASSERT_FALSE(q.empty());
    EXPECT_EQ(q.front().address, p * kPage);
    q.pop();
  }
  EXPECT_TRUE(q.empty());
  q.release();
}

TEST(FaultQueue, AnsweredEntriesMakeRoomWithoutTheQueueEverDraining) {
  FaultQueue q;
  ASSERT_TRUE(q.init(4, kPage));
  for (uint64_t p = 0; p < 4; p++) ASSERT_EQ(q.add(fault(p)), FaultQueue::Added::kQueued);
  q.pop();
  q.pop();  // pages 0 and 1 answered; 2 and 3 still waiting
  EXPECT_EQ(q.add(fault(10)), FaultQueue::Added::kQueued);  // compacts
  EXPECT_EQ(q.add(fault(0)), FaultQueue::Added::kQueued);   // page 0 faulted again: new entry
  EXPECT_EQ(q.add(fault(3)), FaultQueue::Added::kMerged);   // still waiting after compaction
  EXPECT_EQ(q.add(fault(11)), FaultQueue::Added::kFull);
  const uint64_t expect[] = {2, 3, 10, 0};
  for (uint64_t p : expect) {
    ASSERT_FALSE(q.empty());
    EXPECT_EQ(q.front().address, p * kPage);
    q.pop();
  }
  EXPECT_TRUE(q.empty());
  q.release();
}

TEST(FaultQueue, BehavesLikeAPlainQueueOfDistinctPagesUnderRandomUse) {
  FaultQueue q;
  constexpr size_t kCapacity = 64;
  ASSERT_TRUE(q.init(kCapacity, kPage));
  std::deque<uint64_t> model;
  std::mt19937_64 rng(12345);
  size_t full = 0, merged = 0;
  for (int step = 0; step < 200000; step++) {
    if (rng() % 3 != 0) {
      const uint64_t page = rng() % 200;
      const bool waiting = std::find(model.begin(), model.end(), page) != model.end();
      const FaultQueue::Added got = q.add(fault(page, rng() % kPage));
      if (waiting) {
        ASSERT_EQ(got, FaultQueue::Added::kMerged) << "step " << step;
        merged++;
      } else if (model.size() == kCapacity) {
        ASSERT_EQ(got, FaultQueue::Added::kFull) << "step " << step;
        full++;
      } else {
        ASSERT_EQ(got, FaultQueue::Added::kQueued) << "step " << step;
        model.push_back(page);
      }
    } else if (!model.empty()) {
      ASSERT_FALSE(q.empty());
      ASSERT_EQ(q.front().address / kPage, model.front()) << "step " << step;
      q.pop();
      model.pop_front();
    }
    ASSERT_EQ(q.size(), model.size()) << "step " << step;
  }
  EXPECT_GT(full, 0u);
  EXPECT_GT(merged, 0u);
  q.release();
}

}  // namespace
}  // namespace uffdlazy
