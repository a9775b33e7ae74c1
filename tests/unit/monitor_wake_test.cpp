// A thread blocked on a lazy page whose range is unmapped or moved before the fault is answered
// must be woken (the kernel does not) and then see what it would see without the shim: here,
// SIGSEGV, because nothing is mapped at the address any more.
#include <gtest/gtest.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "core/base/spin_lock.h"
#include "core/monitor/monitor.h"
#include "core/monitor/region_table.h"
#include "core/uffd/userfaultfd.h"
#include "tests/unit/thread_state.h"

namespace uffdlazy {
namespace {

thread_local sigjmp_buf* t_jump = nullptr;

void on_segv(int) {
  if (t_jump) siglongjmp(*t_jump, 1);
  _exit(99);
}

struct Harness {
  Userfaultfd uffd;
  RegionTable table;
  SpinLock lock;
  MonitorCounters counters;
  Monitor monitor;
  size_t page = size_t(sysconf(_SC_PAGESIZE));

  void set_up() {
    ASSERT_TRUE(uffd.open(false, nullptr)) << "userfaultfd must be available on this machine";
    ASSERT_TRUE(table.init(64, 16, page));
    Monitor::Setup s;
    s.uffd = &uffd;
    s.table = &table;
    s.table_lock = &lock;
    s.counters = &counters;
    s.page_size = page;
    ASSERT_TRUE(monitor.init(s));
  }
  char* region(size_t pages) {
    void* p = mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t s = uintptr_t(p);
    Region r = {};
    r.start = s;
    r.end = s + pages * page;
    r.source = Region::kZeroSource;
    table.insert(r);
    EXPECT_EQ(uffd.register_missing(s, pages * page), 0);
    return static_cast<char*>(p);
  }
  ~Harness() {
    monitor.stop();
    uffd.close();
    table.release();
  }
};

enum class Outcome { kPending, kRead, kSegv };

void blocked_reader(char* addr, std::atomic<Outcome>* out, std::atomic<int>* tid) {
  tid->store(test::current_tid());
  sigjmp_buf jump;
  t_jump = &jump;
  if (sigsetjmp(jump, 1)) {
    out->store(Outcome::kSegv);
    return;
  }
  volatile char c = *addr;
  (void)c;
  out->store(Outcome::kRead);
}

class MonitorWake : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction sa = {};
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, &old_);
  }
  void TearDown() override { sigaction(SIGSEGV, &old_, nullptr); }
  struct sigaction old_;
};

TEST_F(MonitorWake, ThreadBlockedOnUnmappedRangeIsWokenAndFaultsAsWithoutTheShim) {
  Harness h;
  h.set_up();
  char* r = h.region(16);
  std::atomic<Outcome> outcome{Outcome::kPending};
  std::atomic<int> reader_tid{0}, unmapper_tid{0};
  std::thread reader(blocked_reader, r + 3 * h.page, &outcome, &reader_tid);
  ASSERT_TRUE(test::wait_until_blocked_in(reader_tid, "handle_userfault")) << "no monitor yet: the reader must block";
  ASSERT_EQ(outcome.load(), Outcome::kPending);
  // munmap waits until the monitor reads its UNMAP event, so it runs on a thread of its own.
  std::thread unmapper([&] {
    unmapper_tid.store(test::current_tid());
    munmap(r, 16 * h.page);
  });
  ASSERT_TRUE(test::wait_until_blocked_in(unmapper_tid, "userfaultfd_event_wait_completion"));
  // The range is gone from the address space already (the event is only unread). Pin it as
  // inaccessible so nothing else (the monitor's own stack, say) lands there before the reader
  // retries: without the shim, that retry would fault too.
  void* guard = mmap(r, 16 * h.page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(guard, static_cast<void*>(r));
  ASSERT_TRUE(h.monitor.start());
  reader.join();
  unmapper.join();
  h.monitor.sync();  // the event is read before munmap returns, but booked a moment later
  EXPECT_EQ(outcome.load(), Outcome::kSegv);
  EXPECT_EQ(h.counters.unmap.load(), 1u);
  Region found;
  EXPECT_FALSE(h.table.lookup(uintptr_t(r), &found)) << "the table forgot the unmapped range";
}

TEST_F(MonitorWake, ThreadBlockedOnMovedRangeIsWokenAndTheNewAddressStillWorks) {
  Harness h;
  h.set_up();
  char* r = h.region(16);
  std::atomic<Outcome> outcome{Outcome::kPending};
  std::atomic<int> reader_tid{0}, mover_tid{0};
  std::thread reader(blocked_reader, r + 5 * h.page, &outcome, &reader_tid);
  ASSERT_TRUE(test::wait_until_blocked_in(reader_tid, "handle_userfault"));
  ASSERT_EQ(outcome.load(), Outcome::kPending);
  char* dest = static_cast<char*>(mmap(nullptr, 16 * h.page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* moved = nullptr;
  std::thread mover([&] {
    mover_tid.store(test::current_tid());
    moved = static_cast<char*>(mremap(r, 16 * h.page, 16 * h.page, MREMAP_MAYMOVE | MREMAP_FIXED, dest));
  });
  ASSERT_TRUE(test::wait_until_blocked_in(mover_tid, "userfaultfd_event_wait_completion"));
  void* guard = mmap(r, 16 * h.page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(guard, static_cast<void*>(r));
  ASSERT_TRUE(h.monitor.start());
  reader.join();
  mover.join();
  h.monitor.sync();
  EXPECT_EQ(outcome.load(), Outcome::kSegv);
  ASSERT_EQ(moved, dest);
  EXPECT_EQ(h.counters.remap.load(), 1u);
  // The moved range is still lazily served at its new address.
  EXPECT_EQ(moved[5 * h.page], 0);
  moved[7 * h.page] = 42;
  EXPECT_EQ(moved[7 * h.page], 42);
  Region found;
  ASSERT_TRUE(h.table.lookup(uintptr_t(moved), &found));
  EXPECT_EQ(found.start, uintptr_t(moved));
}

TEST(MonitorServe, UnregisteredAddressesAreNeverTouchedAndRegisteredOnesReadZero) {
  Harness h;
  h.set_up();
  char* r = h.region(8);
  ASSERT_TRUE(h.monitor.start());
  for (size_t i = 0; i < 8; i++) EXPECT_EQ(r[i * h.page + 1], 0);
  r[2 * h.page] = 7;
  EXPECT_EQ(r[2 * h.page], 7);
  h.monitor.stop();  // counts are final once the monitor is joined
  EXPECT_EQ(h.counters.faults.load(), 8u);
}

// A program may close every descriptor the moment it starts (close_range(3, ~0) first thing in
// main): the monitor must already hold the userfaultfd in a table of its own by then, or it finds
// it gone (POLLNVAL) and stops serving. Repeated: before the fix this lost a race most times.
TEST(MonitorServe, TheProgramClosingTheUserfaultfdRightAfterTheStartDoesNotReachTheMonitor) {
  for (int round = 0; round < 30; round++) {
    SCOPED_TRACE(round);
    Harness h;
    h.set_up();
    char* r = h.region(4);
    const int number = h.uffd.fd();
    const int kept = dup(number);  // puts the number back afterwards, for the harness to close
    ASSERT_GE(kept, 0);
    ASSERT_TRUE(h.monitor.start());
    ASSERT_EQ(close(number), 0);
    char link[256] = {};
    const std::string path = "/proc/self/task/" + std::to_string(h.monitor.thread_id()) + "/fd/" + std::to_string(number);
    ASSERT_GT(readlink(path.c_str(), link, sizeof link - 1), 0) << path << " is gone: the monitor lost the userfaultfd";
    EXPECT_STREQ(link, "anon_inode:[userfaultfd]");
    for (size_t i = 0; i < 4; i++) EXPECT_EQ(r[i * h.page], 0);
    h.monitor.stop();
    ASSERT_EQ(dup2(kept, number), number);
    close(kept);
  }
}

}  // namespace
}  // namespace uffdlazy

namespace uffdlazy {
namespace {

// What the checkpoint has the monitor run (it parks there): here, a wait for the test's word.
struct Parked {
  std::atomic<int> started{0};
  std::atomic<int> release{0};
};

void park_until_released(void* arg) {
  auto* p = static_cast<Parked*>(arg);
  p->started.store(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!p->release.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
}

// The incremental checkpoint bench that hung: the monitor, awake for a fault, took the request
// to park before the checkpoint thread's doorbell message was queued, and parked; the checkpoint
// thread then waited in madvise for that message to be read, for ever. The monitor now reads
// messages until the ring has returned before it runs what was asked.
TEST(MonitorPark, ARequestTakenBeforeItsDoorbellRangWaitsForTheRing) {
  Harness h;
  h.set_up();
  char* r = h.region(4);
  Parked parked;
  h.monitor.post_on_monitor(park_until_released, &parked);
  // A fault is waiting when the monitor starts: it wakes for it and finds the request posted,
  // before anyone rang.
  std::atomic<Outcome> outcome{Outcome::kPending};
  std::atomic<int> reader_tid{0};
  std::thread reader(blocked_reader, r + h.page, &outcome, &reader_tid);
  ASSERT_TRUE(test::wait_until_blocked_in(reader_tid, "handle_userfault"));
  ASSERT_TRUE(h.monitor.start());
  reader.join();
  ASSERT_EQ(outcome.load(), Outcome::kRead);
  std::atomic<int> rang{0};
  std::thread ringer([&] {
    h.monitor.ring_doorbell();
    h.monitor.doorbell_heard();
    rang.store(1);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!rang.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(rang.load(), 1) << "the doorbell's madvise never returned: the monitor parked without reading it";
  while (!parked.started.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(parked.started.load(), 1);
  parked.release.store(1);
  ringer.join();
  // The monitor may still be in park_until_released, reading `parked`: joined before it goes.
  h.monitor.stop();
}

}  // namespace
}  // namespace uffdlazy
