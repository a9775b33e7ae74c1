// Readahead and the background fill, with an in-process Monitor serving a real snapshot file
// (SnapshotPageSource) into regions this test registers itself. Every test checks page contents
// exactly, and which pages are in place (mincore) where the point is what was installed when.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/base/spin_lock.h"
#include "core/monitor/monitor.h"
#include "core/monitor/region_table.h"
#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"
#include "core/uffd/userfaultfd.h"

namespace uffdlazy {
namespace {

const size_t kPs = size_t(sysconf(_SC_PAGESIZE));

uint64_t tag(uint64_t page) { return 0x5eed000000000000ull | page; }

// A snapshot with one region of `pages` pages: page i holds tag(i) in word 0 and i * 3 + w in the
// others, except pages listed as zero (stored zero pages) or absent.
class SnapshotFile {
 public:
  // Pages in `corrupt` have one byte of their stored block changed after the file was written, so
  // their checksums fail.
  SnapshotFile(size_t pages, std::set<size_t> zero = {}, std::set<size_t> absent = {}, std::set<size_t> corrupt = {})
      : pages_(pages) {
    char tmpl[] = "/tmp/uffdlazy-fill-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/fill.snap";
    snap::ModuleIdentity exe;
    exe.set_path("/usr/bin/fill-test", 18);
    snap::SnapshotWriter w;
    snap::WriterOptions o;
    o.sync = false;
    std::vector<uint64_t> buf(kPs / 8);
    std::vector<uint64_t> zeros(kPs / 8, 0);
    snap::RegionInfo info{0x10000000, pages * kPs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, {}};
    ok_ = w.open(path_.c_str(), o).ok() && w.begin(exe, 0).ok() &&
          w.add_region_with(info, [&](uint64_t i) -> const void* {
            if (absent.count(i)) return nullptr;
            if (zero.count(i)) return zeros.data();
            buf[0] = tag(i);
            for (size_t k = 1; k < buf.size(); k++) buf[k] = i * 3 + k;
            return buf.data();
          }).ok() &&
          w.commit().ok() && reader_.open(path_.c_str()).ok();
    // Pages are read with pread from a descriptor of the monitor's own, as the shim does.
    fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ok_ = ok_ && fd_ >= 0 && source_.init(&reader_, true, fd_) == 0;
    if (ok_ && !corrupt.empty()) {
      int wfd = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
      for (size_t i : corrupt) {
        const char bad = 0x5a;
        ok_ = ok_ && wfd >= 0 && pwrite(wfd, &bad, 1, off_t(snap::entry_offset(reader_.entry(0, i)) + 100)) == 1;
      }
      if (wfd >= 0) close(wfd);
    }
  }
  ~SnapshotFile() {
    source_.release();
    reader_.close();
    if (fd_ >= 0) close(fd_);
    std::filesystem::remove_all(dir_);
  }
  bool ok() const { return ok_; }
  snap::SnapshotPageSource& source() { return source_; }

  static bool holds_page(const char* p, size_t i) {
    const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
    if (w[0] != tag(i)) return false;
    for (size_t k = 1; k < kPs / 8; k++)
      if (w[k] != i * 3 + k) return false;
    return true;
  }
  static bool zeros(const char* p) {
    for (size_t k = 0; k < kPs; k++)
      if (p[k]) return false;
    return true;
  }

 private:
  size_t pages_;
  bool ok_ = false;
  int fd_ = -1;
  std::string dir_, path_;
  snap::SnapshotReader reader_;
  snap::SnapshotPageSource source_;
};

struct Harness {
  Userfaultfd uffd;
  RegionTable table;
  SpinLock lock;
  MonitorCounters counters;
  Monitor monitor;

  void set_up(PageSource* source, uint32_t readahead, PrefetchMode prefetch, const SourceRun* ws = nullptr,
              size_t ws_runs = 0, uint32_t copy_threads = 2, size_t table_capacity = 4096) {
    ASSERT_TRUE(uffd.open(false, nullptr)) << "userfaultfd must be available on this machine";
    ASSERT_TRUE(table.init(table_capacity, 64, kPs));
    Monitor::Setup s;
    s.uffd = &uffd;
    s.table = &table;
    s.table_lock = &lock;
    s.counters = &counters;
    s.source = source;
    s.page_size = kPs;
    s.readahead_pages = readahead;
    s.prefetch = prefetch;
    s.working_set = ws;
    s.working_set_runs = ws_runs;
    s.copy_threads = copy_threads;
    ASSERT_TRUE(monitor.init(s));
    ASSERT_TRUE(monitor.start());
  }
  // A fresh region restored from snapshot region 0, registered as the shim registers one.
  char* region(size_t pages) {
    void* p = mmap(nullptr, pages * kPs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    Region r = {};
    r.start = uintptr_t(p);
    r.end = r.start + pages * kPs;
    r.source = 0;
    r.source_page = 0;
    {
      LockGuard g(lock);
      table.mapped(r.start, r.end);
      EXPECT_TRUE(table.insert(r));
    }
    EXPECT_EQ(uffd.register_missing(r.start, pages * kPs), 0);
    return static_cast<char*>(p);
  }
  ~Harness() {
    monitor.stop();
    uffd.close();
    table.release();
  }
};

// Polls `done` until it holds or 60 s have passed. The monitor works on its own: the loop only
// looks (a sync() per check would ring the doorbell, and every fill attempted while that event is
// in flight fails with EAGAIN, so a tight sync() loop would starve the very fill it waits for).
template <class Pred>
bool wait_until(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return true;
}

// Which pages of [base, base + pages) are in place, without touching them.
std::vector<bool> present(const char* base, size_t pages) {
  std::vector<unsigned char> v(pages);
  EXPECT_EQ(mincore(const_cast<char*>(base), pages * kPs, v.data()), 0);
  std::vector<bool> out(pages);
  for (size_t i = 0; i < pages; i++) out[i] = v[i] & 1;
  return out;
}

size_t count_present(const char* base, size_t pages) {
  size_t n = 0;
  for (bool b : present(base, pages)) n += b;
  return n;
}

TEST(Readahead, SequentialScanIsServedInFewFaultsWithEveryPageRight) {
  SnapshotFile f(1024);
  ASSERT_TRUE(f.ok());
  Harness h;
  h.set_up(&f.source(), 256, PrefetchMode::kNone);
  char* r = h.region(1024);
  size_t bad = 0;
  for (size_t i = 0; i < 1024; i++) bad += !SnapshotFile::holds_page(r + i * kPs, i);
  h.monitor.sync();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(f.source().owed_all_pages(), 0u);
  EXPECT_EQ(f.source().served_pages(), 1024u);
  // One page per fault would be 1024 faults; windows of 16, 32, ... 256 pages need a handful (a
  // scan that catches up with the background part of a window faults once per chunk at most).
  EXPECT_LT(h.counters.faults.load(), 1024u / 4) << "readahead did not cut the faults";
  EXPECT_EQ(h.counters.pages_data.load(), 1024u);
  EXPECT_EQ(h.counters.readahead.load(), 1024u - (h.counters.faults.load() - h.counters.already_present.load()));
  EXPECT_EQ(h.counters.prefetched.load(), 0u);
}

TEST(Readahead, NeverCrossesADroppedPage) {
  SnapshotFile f(64);
  ASSERT_TRUE(f.ok());
  Harness h;
  h.set_up(&f.source(), 64, PrefetchMode::kNone);
  char* r = h.region(64);
  // Page 10 is dropped before anything touched it: the monitor reads the REMOVE before madvise
  // returns, and applies it before the fault below.
  ASSERT_EQ(madvise(r + 10 * kPs, kPs, MADV_DONTNEED), 0);
  EXPECT_TRUE(SnapshotFile::holds_page(r, 0));
  h.monitor.sync();
  // The window of the first fault is 16 pages: it stops at the dropped page and reads no further.
  std::vector<bool> in = present(r, 64);
  for (size_t i = 0; i < 64; i++) EXPECT_EQ(in[i], i < 10) << "page " << i;
  EXPECT_FALSE(f.source().is_owed(0, 10));
  for (size_t i = 11; i < 64; i++) EXPECT_TRUE(f.source().is_owed(0, i)) << "page " << i;
  EXPECT_TRUE(SnapshotFile::zeros(r + 10 * kPs)) << "the dropped page must read zeros, never old content";
  for (size_t i = 11; i < 64; i++) EXPECT_TRUE(SnapshotFile::holds_page(r + i * kPs, i)) << "page " << i;
  for (size_t i = 0; i < 10; i++) EXPECT_TRUE(SnapshotFile::holds_page(r + i * kPs, i)) << "page " << i;
  h.monitor.sync();  // a woken reader may run before the monitor books the page
  EXPECT_EQ(f.source().owed_all_pages(), 0u);
}

TEST(Readahead, StopsAtTheFirstPageNotOwedAndSkipsStoredZeroRunsCorrectly) {
  // Pages 4..5 are stored zero pages, 8 is absent (never owed): a run is of one kind, and the
  // readahead of the first fault ends at page 8.
  SnapshotFile f(32, {4, 5}, {8});
  ASSERT_TRUE(f.ok());
  Harness h;
  h.set_up(&f.source(), 64, PrefetchMode::kNone);
  char* r = h.region(32);
  EXPECT_TRUE(SnapshotFile::holds_page(r, 0));
  h.monitor.sync();
  // Wait for the background part of the window to finish (the monitor goes idle after it).
  EXPECT_TRUE(wait_until([&] { return count_present(r, 32) >= 8; }));
  std::vector<bool> in = present(r, 32);
  for (size_t i = 0; i < 32; i++) EXPECT_EQ(in[i], i < 8) << "page " << i;
  EXPECT_TRUE(SnapshotFile::zeros(r + 4 * kPs));
  EXPECT_TRUE(SnapshotFile::zeros(r + 5 * kPs));
  EXPECT_TRUE(SnapshotFile::zeros(r + 8 * kPs));
  for (size_t i = 0; i < 32; i++) {
    if (i != 4 && i != 5 && i != 8) {
      EXPECT_TRUE(SnapshotFile::holds_page(r + i * kPs, i)) << "page " << i;
    }
  }
}

TEST(Readahead, RunAcrossAVmaBoundaryIsRetriedShorter) {
  SnapshotFile f(64);
  ASSERT_TRUE(f.ok());
  Harness h;
  h.set_up(&f.source(), 64, PrefetchMode::kNone);
  char* r = h.region(64);
  // mprotect splits the registered range in two VMAs at page 32; the table still has one region.
  ASSERT_EQ(mprotect(r + 32 * kPs, 32 * kPs, PROT_READ), 0);
  EXPECT_TRUE(SnapshotFile::holds_page(r + 28 * kPs, 28));  // its window runs to page 44
  size_t bad = 0;
  for (size_t i = 0; i < 64; i++) bad += !SnapshotFile::holds_page(r + i * kPs, i);
  EXPECT_EQ(bad, 0u);
  h.monitor.sync();
  EXPECT_EQ(f.source().owed_all_pages(), 0u);
}

// The background fill against the program dropping pages meanwhile: whichever comes first, a
// dropped page reads zeros and every other page holds the snapshot's content.
// With one copying thread and with two (the copy helper installs half of each long run).
TEST(BackgroundFill, DroppedPagesDuringTheFillReadZeros) {
  constexpr size_t kPages = 16384;  // 64 MiB: the fill takes long enough to be under way
  for (int round = 0; round < 6; round++) {
    const uint32_t copy_threads = 1 + round % 2;
    SCOPED_TRACE("round " + std::to_string(round) + ", copy threads " + std::to_string(copy_threads));
    SnapshotFile f(kPages);
    ASSERT_TRUE(f.ok());
    Harness h;
    h.set_up(&f.source(), 1024, PrefetchMode::kAll, nullptr, 0, copy_threads);
    char* r = h.region(kPages);
    h.monitor.region_restored(0);  // the fill starts
    const size_t dropped_at[] = {size_t(40 + round * 700), size_t(8000 + round * 33), kPages - 100};
    for (size_t at : dropped_at) ASSERT_EQ(madvise(r + at * kPs, 64 * kPs, MADV_DONTNEED), 0);
    auto dropped = [&](size_t i) {
      for (size_t at : dropped_at)
        if (i >= at && i < at + 64) return true;
      return false;
    };
    // Until the fill is done, with a deadline rather than a sleep.
    wait_until([&] { return f.source().owed_all_pages() == 0; });
    if (f.source().owed_all_pages() > 0) {
      std::string left;
      for (size_t i = 0, n = 0; i < kPages && n < 8; i++) {
        if (f.source().is_owed(0, i)) left += " " + std::to_string(i), n++;
      }
      ADD_FAILURE() << f.source().owed_all_pages() << " pages still owed after the fill (first:" << left
                    << "); prefetched=" << h.counters.prefetched.load() << " faults=" << h.counters.faults.load()
                    << " gone=" << h.counters.gone.load() << " remove=" << h.counters.remove.load();
    }
    h.monitor.sync();
    const uint64_t faults_before = h.counters.faults.load();
    size_t bad = 0;
    for (size_t i = 0; i < kPages; i++) {
      const char* p = r + i * kPs;
      bad += dropped(i) ? !SnapshotFile::zeros(p) : !SnapshotFile::holds_page(p, i);
    }
    EXPECT_EQ(bad, 0u);
    h.monitor.sync();
    EXPECT_GT(h.counters.prefetched.load(), kPages / 2) << "the background fill did the work";
    // Every page the fill installed was there without a fault; only dropped pages fault (zeros).
    EXPECT_LE(h.counters.faults.load() - faults_before, 3u * 64);
    EXPECT_EQ(f.source().served_pages() + f.source().dropped_pages(), kPages);
    munmap(r, kPages * kPs);
  }
}

// The program drops and replaces pages at random while both copying threads fill the region: every
// page it dropped (MADV_DONTNEED) or mapped afresh over (MAP_FIXED) reads zeros, whichever came
// first, the drop or the fill; every other page holds the snapshot's content.
TEST(BackgroundFill, RandomDropsRacingBothCopyingThreadsNeverBringBackOldContent) {
  constexpr size_t kPages = 16384;
  std::mt19937_64 rng(4242);
  for (int round = 0; round < 4; round++) {
    SCOPED_TRACE(round);
    SnapshotFile f(kPages);
    ASSERT_TRUE(f.ok());
    Harness h;
    h.set_up(&f.source(), 1024, PrefetchMode::kAll, nullptr, 0, 2);
    char* r = h.region(kPages);
    std::vector<bool> dropped(kPages, false);
    h.monitor.region_restored(0);  // the fill starts
    for (int i = 0; i < 300; i++) {
      const size_t at = rng() % kPages;
      const size_t want = 1 + rng() % 96;
      const size_t n = want < kPages - at ? want : kPages - at;
      if (rng() % 4 == 0) {
        ASSERT_NE(mmap(r + at * kPs, n * kPs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
                  MAP_FAILED);
      } else {
        ASSERT_EQ(madvise(r + at * kPs, n * kPs, MADV_DONTNEED), 0);
      }
      for (size_t k = at; k < at + n; k++) dropped[k] = true;
      if (i % 16 == 0) std::this_thread::yield();
    }
    // Until nothing the fill can still install is owed (the replaced ranges are not registered
    // any more: the monitor dropped them from the table and the source when it read the UNMAP).
    EXPECT_TRUE(wait_until([&] { return f.source().owed_all_pages() == 0; }))
        << f.source().owed_all_pages() << " pages still owed";
    h.monitor.sync();
    size_t bad = 0, first_bad = kPages;
    for (size_t i = 0; i < kPages; i++) {
      const char* p = r + i * kPs;
      const bool ok = dropped[i] ? SnapshotFile::zeros(p) : SnapshotFile::holds_page(p, i);
      if (!ok && bad++ == 0) first_bad = i;
    }
        EXPECT_EQ(bad, 0u) << "first wrong page " << first_bad << (first_bad < kPages && dropped[first_bad] ? " (dropped)" : "");
    munmap(r, kPages * kPs);
  }
}

// A region table too full to keep a piece of a restored region that still owes pages: the monitor
// stops the process with a message rather than answer that piece's faults with zeros.
TEST(BackgroundFillDeathTest, FullTableThatLosesARestoredPieceStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SnapshotFile f(256);
        if (!f.ok()) std::_Exit(2);
        Harness h;
        h.set_up(&f.source(), 1, PrefetchMode::kNone, nullptr, 0, 1, 1);  // room for one region
        char* r = h.region(256);
        // Punching a hole needs a second entry for the right-hand piece: there is no room.
        mmap(r + 100 * kPs, kPs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        (void)*(volatile char*)(r + 200 * kPs);  // a page of the lost piece
        std::_Exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "region table is full and could not keep a piece of a restored region");
}

// The copy helper's half of a run may succeed where the monitor's half meets a VMA boundary (an
// mprotect split the region; the copy then fails with ENOENT): every page still ends up in place
// with its content, and served exactly once.
TEST(BackgroundFill, SplitCopiesAcrossVmaBoundariesInstallEveryPageOnce) {
  constexpr size_t kPages = 4096;
  SnapshotFile f(kPages);
  ASSERT_TRUE(f.ok());
  Harness h;
  h.set_up(&f.source(), 1024, PrefetchMode::kNone, nullptr, 0, 2);
  char* r = h.region(kPages);
  // VMAs of odd lengths, so that the halves of many runs straddle a boundary.
  const size_t cuts[] = {7, 100, 133, 1000, 1017, 2049, 3001, 3002, 4000};
  for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i += 2)
    ASSERT_EQ(mprotect(r + cuts[i] * kPs, (cuts[i + 1] - cuts[i]) * kPs, PROT_READ), 0);
  h.monitor.fill_all_owed();
  EXPECT_EQ(f.source().owed_all_pages(), 0u);
  EXPECT_EQ(count_present(r, kPages), kPages);
  size_t bad = 0;
  for (size_t i = 0; i < kPages; i++) bad += !SnapshotFile::holds_page(r + i * kPs, i);
  EXPECT_EQ(bad, 0u);
  h.monitor.sync();
  EXPECT_EQ(f.source().served_pages(), kPages);
  EXPECT_EQ(h.counters.faults.load(), 0u);
}

// A page that fails its checksum is never installed, whichever thread reads it: here one in the
// monitor's half and one in the copy helper's half of long runs. The background fill leaves them
// owed (a fault on one would stop the process, as SnapshotBadInput tests); every other page is in
// place with its content.
TEST(BackgroundFill, CorruptPagesAreNeverInstalledByEitherCopyingThread) {
  constexpr size_t kPages = 2048;
  const std::set<size_t> corrupt = {300, 1500 + 200};
  for (uint32_t copy_threads : {1u, 2u}) {
    SCOPED_TRACE(copy_threads);
    SnapshotFile f(kPages, {}, {}, corrupt);
    ASSERT_TRUE(f.ok());
    Harness h;
    h.set_up(&f.source(), 1024, PrefetchMode::kAll, nullptr, 0, copy_threads);
    char* r = h.region(kPages);
    h.monitor.region_restored(0);
    EXPECT_TRUE(wait_until([&] { return f.source().owed_all_pages() <= corrupt.size(); }))
        << f.source().owed_all_pages() << " pages still owed";
    h.monitor.sync();
    std::vector<bool> in = present(r, kPages);
    size_t bad = 0;
    for (size_t i = 0; i < kPages; i++) {
      if (corrupt.count(i)) {
        EXPECT_FALSE(in[i]) << "page " << i << " failed its checksum and must not be in place";
        EXPECT_TRUE(f.source().is_owed(0, i)) << "page " << i;
      } else {
        bad += !in[i] || !SnapshotFile::holds_page(r + i * kPs, i);
      }
    }
    EXPECT_EQ(bad, 0u);
    munmap(r, kPages * kPs);
  }
}

// The second copying thread exists only where it can help: a source owing pages, two threads asked
// for (the default) and more than one CPU to run on.
TEST(BackgroundFill, CopyHelperRunsOnlyWhenAsked) {
  auto copy_threads_running = [] {
    int n = 0;
    DIR* d = opendir("/proc/self/task");
    while (dirent* e = d ? readdir(d) : nullptr) {
      std::string comm;
      std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/comm");
      if (std::getline(in, comm) && comm == "uffdlazy-copy") n++;
    }
    if (d) closedir(d);
    return n;
  };
  ASSERT_EQ(copy_threads_running(), 0);
  SnapshotFile f(64);
  ASSERT_TRUE(f.ok());
  {
    Harness h;
    h.set_up(&f.source(), 64, PrefetchMode::kNone, nullptr, 0, 1);
    EXPECT_EQ(copy_threads_running(), 0);
  }
  {
    cpu_set_t cpus;
    ASSERT_EQ(sched_getaffinity(0, sizeof cpus, &cpus), 0);
    Harness h;
    h.set_up(&f.source(), 64, PrefetchMode::kNone, nullptr, 0, 2);
    EXPECT_EQ(copy_threads_running(), CPU_COUNT(&cpus) >= 2 ? 1 : 0);
  }
  // The thread is joined; the kernel drops its /proc entry a moment after.
  EXPECT_TRUE(wait_until([&] { return copy_threads_running() == 0; })) << "stop() ends the copy helper too";
}

TEST(BackgroundFill, PrefetchNoneInstallsNothingUnasked) {
  SnapshotFile f(256);
  ASSERT_TRUE(f.ok());
  Harness h;
  h.set_up(&f.source(), 1, PrefetchMode::kNone);
  char* r = h.region(256);
  h.monitor.region_restored(0);
  h.monitor.sync();
  EXPECT_EQ(count_present(r, 256), 0u);
  EXPECT_TRUE(SnapshotFile::holds_page(r + 7 * kPs, 7));
  h.monitor.sync();
  EXPECT_EQ(count_present(r, 256), 1u);
  EXPECT_EQ(h.counters.prefetched.load(), 0u);
}

TEST(BackgroundFill, WorkingSetIsInPlaceWhenRegionRestoredReturns) {
  SnapshotFile f(256);
  ASSERT_TRUE(f.ok());
  const SourceRun ws[] = {{0, 3, 100}, {0, 1, 7}, {0, 2, 50}, {0, 1, 255}};
  Harness h;
  h.set_up(&f.source(), 1, PrefetchMode::kWorkingSet, ws, 4);
  char* r = h.region(256);
  EXPECT_EQ(count_present(r, 256), 0u);
  h.monitor.region_restored(0);
  // No fault has happened: exactly the working set is in place, and only it (prefetch ws stops).
  std::vector<bool> in = present(r, 256);
  const std::set<size_t> want = {7, 50, 51, 100, 101, 102, 255};
  for (size_t i = 0; i < 256; i++) EXPECT_EQ(in[i], want.count(i) == 1) << "page " << i;
  EXPECT_EQ(h.counters.prefetched.load(), want.size());
  for (size_t i : want) EXPECT_TRUE(SnapshotFile::holds_page(r + i * kPs, i)) << "page " << i;
  h.monitor.sync();
  EXPECT_EQ(h.counters.faults.load(), 0u) << "the working set was read without a single fault";
  h.monitor.sync();
  EXPECT_EQ(count_present(r, 256), want.size());
}

TEST(BackgroundFill, WorkingSetRecordedOutOfOrderGoesInAsRunsAndNothingElse) {
  // A scan recorded backwards and in pieces: pages 40..47, then 20..39 one by one in reverse, and
  // 60 and 62 (61 is not in the working set and must stay out).
  SnapshotFile f(128);
  ASSERT_TRUE(f.ok());
  std::vector<SourceRun> ws = {{0, 8, 40}};
  for (uint64_t p = 39; p >= 20; p--) ws.push_back({0, 1, p});
  ws.push_back({0, 1, 62});
  ws.push_back({0, 1, 60});
  Harness h;
  h.set_up(&f.source(), 1, PrefetchMode::kWorkingSet, ws.data(), ws.size());
  char* r = h.region(128);
  h.monitor.region_restored(0);
  std::vector<bool> in = present(r, 128);
  for (size_t i = 0; i < 128; i++) {
    const bool want = (i >= 20 && i < 48) || i == 60 || i == 62;
    EXPECT_EQ(in[i], want) << "page " << i;
  }
  EXPECT_EQ(h.counters.prefetched.load(), 30u);
  for (size_t i = 20; i < 48; i++) EXPECT_TRUE(SnapshotFile::holds_page(r + i * kPs, i)) << "page " << i;
  EXPECT_TRUE(SnapshotFile::holds_page(r + 61 * kPs, 61));  // on its own fault
  h.monitor.sync();
  EXPECT_EQ(h.counters.faults.load(), 1u);
}

TEST(BackgroundFill, WorkingSetSkipsDroppedPagesAndAllFillsTheRest) {
  SnapshotFile f(512);
  ASSERT_TRUE(f.ok());
  const SourceRun ws[] = {{0, 64, 200}};
  Harness h;
  h.set_up(&f.source(), 1, PrefetchMode::kAll, ws, 1);
  char* r = h.region(512);
  // Dropped before the region is announced: the working set must skip it.
  ASSERT_EQ(madvise(r + 210 * kPs, 4 * kPs, MADV_DONTNEED), 0);
  h.monitor.region_restored(0);
  std::vector<bool> in = present(r, 512);
  for (size_t i = 200; i < 264; i++) EXPECT_EQ(in[i], i < 210 || i >= 214) << "page " << i;
  EXPECT_TRUE(wait_until([&] { return f.source().owed_all_pages() == 0; }));
  EXPECT_EQ(f.source().owed_all_pages(), 0u);
  EXPECT_EQ(count_present(r, 512), 512u - 4);
  for (size_t i = 0; i < 512; i++) {
    if (i >= 210 && i < 214) {
      EXPECT_TRUE(SnapshotFile::zeros(r + i * kPs)) << "page " << i;
    } else {
      EXPECT_TRUE(SnapshotFile::holds_page(r + i * kPs, i)) << "page " << i;
    }
  }
  EXPECT_EQ(h.counters.prefetched.load(), 512u - 4);
}

TEST(BackgroundFill, FillBeforeForkInstallsEveryDataPageAndLeavesStoredZerosOwed) {
  SnapshotFile f(128, {3, 90}, {5});
  ASSERT_TRUE(f.ok());
  Harness h;
  h.set_up(&f.source(), 1, PrefetchMode::kNone);
  char* r = h.region(128);
  ASSERT_EQ(madvise(r + 60 * kPs, 2 * kPs, MADV_DONTNEED), 0);
  h.monitor.fill_all_owed();
  std::vector<bool> in = present(r, 128);
  for (size_t i = 0; i < 128; i++) {
    const bool data = i != 3 && i != 90 && i != 5 && i != 60 && i != 61;
    EXPECT_EQ(in[i], data) << "page " << i;
  }
  EXPECT_EQ(f.source().owed_pages(), 0u);
  EXPECT_EQ(f.source().owed_zero_pages(), 2u);
  for (size_t i = 0; i < 128; i++) {
    const char* p = r + i * kPs;
    if (i == 3 || i == 90 || i == 5 || i == 60 || i == 61) {
      EXPECT_TRUE(SnapshotFile::zeros(p)) << "page " << i;
    } else {
      EXPECT_TRUE(SnapshotFile::holds_page(p, i)) << "page " << i;
    }
  }
}

}  // namespace
}  // namespace uffdlazy
