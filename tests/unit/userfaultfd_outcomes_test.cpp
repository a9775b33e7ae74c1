// Every outcome of the page-filling ioctls as the Userfaultfd wrapper reports it, produced for
// real on a userfaultfd of this process without a monitor and without ever faulting (a fault on a
// registered page here would wait forever): the fills and wakes are issued straight at the ranges.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "core/uffd/userfaultfd.h"
#include "tests/unit/thread_state.h"

namespace uffdlazy {
namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));

struct Registered {
  Userfaultfd uffd;
  char* base = nullptr;
  size_t pages = 0;
  void set_up(size_t n) {
    ASSERT_TRUE(uffd.open(false, nullptr)) << "userfaultfd must be available on this machine";
    pages = n;
    base = static_cast<char*>(mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(base, MAP_FAILED);
    ASSERT_EQ(uffd.register_missing(uintptr_t(base), n * kPage), 0);
  }
  uintptr_t page(size_t i) const { return uintptr_t(base) + i * kPage; }
  ~Registered() {
    if (base) {
      uffd.unregister(uintptr_t(base), pages * kPage);
      munmap(base, pages * kPage);
    }
    uffd.close();
  }
};

TEST(UserfaultfdOutcomes, CopyZeropageExistsPartialAndNoEntry) {
  Registered r;
  r.set_up(8);
  std::vector<char> src(2 * kPage, 'x');

  FillResult done = r.uffd.copy(r.page(0), src.data(), kPage);
  EXPECT_EQ(done.status, FillStatus::kDone);
  EXPECT_EQ(done.bytes, kPage);
  EXPECT_EQ(r.base[0], 'x');  // present now: reading it does not fault

  FillResult again = r.uffd.copy(r.page(0), src.data(), kPage);
  EXPECT_EQ(again.status, FillStatus::kExists);

  FillResult zero = r.uffd.zeropage(r.page(1), kPage);
  EXPECT_EQ(zero.status, FillStatus::kDone);
  EXPECT_EQ(r.base[kPage], 0);
  EXPECT_EQ(r.uffd.zeropage(r.page(1), kPage).status, FillStatus::kExists);

  // Pages 3 and 4, 4 already present: the first is installed, then the kernel stops.
  ASSERT_EQ(r.uffd.copy(r.page(4), src.data(), kPage).status, FillStatus::kDone);
  FillResult partial = r.uffd.copy(r.page(3), src.data(), 2 * kPage);
  EXPECT_EQ(partial.status, FillStatus::kPartial);
  EXPECT_EQ(partial.bytes, kPage);
  EXPECT_EQ(r.base[3 * kPage], 'x');

  // Outside any registered range (unmapped, or a range spanning the end of the registration).
  char* other = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  munmap(other, kPage);
  EXPECT_EQ(r.uffd.copy(uintptr_t(other), src.data(), kPage).status, FillStatus::kNoEntry);
  EXPECT_EQ(r.uffd.zeropage(r.page(7), 2 * kPage).status, FillStatus::kNoEntry);

  // A wake with nobody waiting is fine; a misaligned fill is an error with its errno.
  EXPECT_EQ(r.uffd.wake(r.page(5), kPage), 0);
  FillResult bad = r.uffd.copy(r.page(5) + 1, src.data(), kPage);
  EXPECT_EQ(bad.status, FillStatus::kError);
  EXPECT_EQ(bad.err, EINVAL);
}

TEST(UserfaultfdOutcomes, EventPendingUntilTheEventIsRead) {
  Registered r;
  r.set_up(8);
  std::vector<char> src(kPage, 'y');
  // Another registered range that a thread unmaps: the kernel queues UNMAP and blocks that thread
  // until the event is read; meanwhile every fill is refused with EAGAIN and no progress.
  char* doomed = static_cast<char*>(mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_EQ(r.uffd.register_missing(uintptr_t(doomed), 4 * kPage), 0);
  std::atomic<int> tid{0};
  std::thread unmapper([&] {
    tid.store(test::current_tid());
    munmap(doomed, 4 * kPage);
  });
  ASSERT_TRUE(test::wait_until_blocked_in(tid, "userfaultfd_event_wait_completion"));
  FillResult pending = r.uffd.copy(r.page(2), src.data(), kPage);
  EXPECT_EQ(pending.status, FillStatus::kEventPending);
  EXPECT_EQ(pending.bytes, 0u);

  uffd_msg msg;
  ASSERT_EQ(r.uffd.read_messages(&msg, 1), 1);
  EXPECT_EQ(msg.event, UFFD_EVENT_UNMAP);
  unmapper.join();  // the event read, munmap returns and the kernel lets fills through again
  EXPECT_EQ(r.uffd.copy(r.page(2), src.data(), kPage).status, FillStatus::kDone);
  EXPECT_EQ(r.base[2 * kPage], 'y');
  EXPECT_EQ(r.uffd.read_messages(&msg, 1), 0) << "nothing else queued";
}

}  // namespace
}  // namespace uffdlazy
