// SnapshotPageSource over a real snapshot file: which pages are owed, what peek returns for each
// kind, exact counts after consume and drop, and checksum verification of corrupted pages.
#include <gtest/gtest.h>

#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "core/monitor/region.h"
#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;
using UPageKind = uffdlazy::PageKind;

namespace {

class SnapshotPageSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uffdlazy-psrc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/app.snap";
    ps_ = uint32_t(sysconf(_SC_PAGESIZE));
    exe_.set_path("/usr/bin/app", 12);
    a_ = page_of(0xa1);
    b_ = page_of(0xb2);
    c_ = page_of(0xc3);
    zero_.assign(ps_, 0);
    write_snapshot();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<uint8_t> page_of(uint8_t seed) {
    std::vector<uint8_t> p(ps_);
    for (uint32_t i = 0; i < ps_; i++) p[i] = uint8_t(seed + i * 7);
    return p;
  }

  // Region 0 (8 pages): A, zero, absent, dup(A), B, C, absent, zero.
  //   data 3 (A, B, C), duplicate 1, zero 2, absent 2: owed 4 data-like + 2 zero.
  // Region 1 (130 pages): page i distinct data, except every 10th page absent (13 absent).
  //   owed 117, all data.
  // Region 2 (0 pages).
  void write_snapshot() {
    SnapshotWriter w;
    WriterOptions o;
    o.sync = false;
    ASSERT_TRUE(w.open(path_.c_str(), o).ok());
    ASSERT_TRUE(w.begin(exe_, 0).ok());
    const std::vector<const std::vector<uint8_t>*> r0 = {&a_, &zero_, nullptr, &a_, &b_, &c_, nullptr, &zero_};
    RegionInfo i0{0x10000000, 8ull * ps_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, {}};
    ASSERT_TRUE(w.add_region_with(i0, [&](uint64_t i) -> const void* { return r0[i] ? r0[i]->data() : nullptr; }).ok());
    std::vector<uint8_t> scratch(ps_);
    RegionInfo i1{0x20000000, 130ull * ps_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, {}};
    ASSERT_TRUE(w.add_region_with(i1, [&](uint64_t i) -> const void* {
                   if (i % 10 == 0) return nullptr;
                   memset(scratch.data(), 0x77, ps_);
                   memcpy(scratch.data(), &i, sizeof i);
                   return scratch.data();
                 }).ok());
    RegionInfo i2{0x30000000, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, {}};
    ASSERT_TRUE(w.add_region_with(i2, [&](uint64_t) -> const void* { return nullptr; }).ok());
    ASSERT_TRUE(w.commit().ok());
  }

  void open_reader(SnapshotReader& r) { ASSERT_TRUE(r.open(path_.c_str()).ok()); }

  // Flips one byte in the stored block of region `region` page `page`.
  void corrupt(uint64_t region, uint64_t page) {
    uint64_t off;
    {
      SnapshotReader r;
      open_reader(r);
      PageRef ref = r.page(region, page);
      ASSERT_EQ(ref.kind, PageKind::kData);
      off = ref.offset;
    }
    int fd = ::open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint8_t byte;
    ASSERT_EQ(pread(fd, &byte, 1, off_t(off + 100)), 1);
    byte ^= 0xff;
    ASSERT_EQ(pwrite(fd, &byte, 1, off_t(off + 100)), 1);
    close(fd);
  }

  std::string dir_, path_;
  uint32_t ps_ = 0;
  ModuleIdentity exe_;
  std::vector<uint8_t> a_, b_, c_, zero_;
};

TEST_F(SnapshotPageSourceTest, InitCountsOwedPages) {
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  EXPECT_EQ(s.init(nullptr, false), -EINVAL);
  ASSERT_EQ(s.init(&r, false), 0);
  EXPECT_EQ(s.region_count(), 3u);
  EXPECT_EQ(s.owed_pages(), 4u + 117u);
  EXPECT_EQ(s.owed_zero_pages(), 2u);
  EXPECT_EQ(s.owed_all_pages(), 123u);
  EXPECT_EQ(s.served_pages(), 0u);
  EXPECT_EQ(s.dropped_pages(), 0u);
  for (uint64_t p : {0, 1, 3, 4, 5, 7}) EXPECT_TRUE(s.is_owed(0, p)) << p;
  for (uint64_t p : {2, 6, 8}) EXPECT_FALSE(s.is_owed(0, p)) << p;
  EXPECT_FALSE(s.is_owed(1, 0));
  EXPECT_TRUE(s.is_owed(1, 1));
  EXPECT_TRUE(s.is_owed(1, 129));
  EXPECT_FALSE(s.is_owed(1, 130));
  EXPECT_FALSE(s.is_owed(-1, 0));
  EXPECT_FALSE(s.is_owed(3, 0));
  RegionAccount a0 = s.region_account(0);
  EXPECT_EQ(a0.pages, 8u);
  EXPECT_EQ(a0.owed_at_start, 6u);
  EXPECT_EQ(a0.still_owed, 6u);
  EXPECT_EQ(s.region_account(1).owed_at_start, 117u);
  EXPECT_EQ(s.region_account(2).pages, 0u);
  EXPECT_EQ(s.region_account(2).owed_at_start, 0u);
  EXPECT_EQ(s.region_account(9).pages, 0u);
}

TEST_F(SnapshotPageSourceTest, PeekReturnsKindAndPointer) {
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, false), 0);

  uffdlazy::PageContent c = s.peek(0, 0);
  EXPECT_EQ(c.kind, UPageKind::kData);
  EXPECT_EQ(c.data, r.page(0, 0).data);
  EXPECT_EQ(memcmp(c.data, a_.data(), ps_), 0);
  // The pointer lies inside the file mapping, in the data section.
  const uint8_t* p = static_cast<const uint8_t*>(c.data);
  EXPECT_GE(p, r.base() + r.data_offset());
  EXPECT_LE(p + ps_, r.base() + r.data_offset() + r.data_length());

  c = s.peek(0, 1);  // stored zero page: the monitor zero-fills
  EXPECT_EQ(c.kind, UPageKind::kZero);
  EXPECT_EQ(c.data, nullptr);
  c = s.peek(0, 2);  // absent
  EXPECT_EQ(c.kind, UPageKind::kZero);
  EXPECT_EQ(c.data, nullptr);

  c = s.peek(0, 3);  // duplicate of page 0: the same block
  EXPECT_EQ(c.kind, UPageKind::kDuplicate);
  EXPECT_EQ(c.data, s.peek(0, 0).data);

  c = s.peek(0, 4);
  EXPECT_EQ(c.kind, UPageKind::kData);
  EXPECT_EQ(memcmp(c.data, b_.data(), ps_), 0);
  c = s.peek(0, 5);
  EXPECT_EQ(c.kind, UPageKind::kData);
  EXPECT_EQ(memcmp(c.data, c_.data(), ps_), 0);

  c = s.peek(1, 77);
  ASSERT_EQ(c.kind, UPageKind::kData);
  uint64_t tag;
  memcpy(&tag, c.data, sizeof tag);
  EXPECT_EQ(tag, 77u);
  EXPECT_EQ(s.peek(1, 70).kind, UPageKind::kZero);  // absent

  // Out of range.
  EXPECT_EQ(s.peek(0, 8).kind, UPageKind::kZero);
  EXPECT_EQ(s.peek(1, 130).kind, UPageKind::kZero);
  EXPECT_EQ(s.peek(2, 0).kind, UPageKind::kZero);
  EXPECT_EQ(s.peek(3, 0).kind, UPageKind::kZero);
  EXPECT_EQ(s.peek(-1, 0).kind, UPageKind::kZero);
  EXPECT_EQ(s.peek(uffdlazy::Region::kZeroSource, 0).data, nullptr);

  // Peeking consumes nothing.
  EXPECT_EQ(s.owed_pages(), 121u);
  EXPECT_EQ(s.served_pages(), 0u);
}

TEST_F(SnapshotPageSourceTest, ConsumeServesEachPageOnce) {
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, false), 0);

  s.consume(0, 0);
  EXPECT_EQ(s.owed_pages(), 120u);
  EXPECT_EQ(s.served_pages(), 1u);
  EXPECT_EQ(s.peek(0, 0).kind, UPageKind::kZero);
  EXPECT_FALSE(s.is_owed(0, 0));
  // The duplicate of page 0 is still owed on its own.
  EXPECT_EQ(s.peek(0, 3).kind, UPageKind::kDuplicate);

  s.consume(0, 0);  // again: nothing changes
  EXPECT_EQ(s.owed_pages(), 120u);
  EXPECT_EQ(s.served_pages(), 1u);

  s.consume(0, 1);  // stored zero page
  EXPECT_EQ(s.owed_pages(), 120u);
  EXPECT_EQ(s.owed_zero_pages(), 1u);
  EXPECT_EQ(s.served_pages(), 2u);

  s.consume(0, 2);  // absent: never owed
  s.consume(0, 8);  // out of range
  s.consume(-1, 0);
  s.consume(7, 0);
  EXPECT_EQ(s.owed_pages(), 120u);
  EXPECT_EQ(s.owed_zero_pages(), 1u);
  EXPECT_EQ(s.served_pages(), 2u);

  s.consume(0, 3);
  s.consume(1, 129);
  EXPECT_EQ(s.owed_pages(), 118u);
  EXPECT_EQ(s.served_pages(), 4u);

  RegionAccount a0 = s.region_account(0);
  EXPECT_EQ(a0.served, 3u);
  EXPECT_EQ(a0.dropped, 0u);
  EXPECT_EQ(a0.still_owed, 3u);
  EXPECT_EQ(a0.never_touched(), 3u);
  EXPECT_EQ(s.region_account(1).served, 1u);
  EXPECT_EQ(s.region_account(1).still_owed, 116u);
}

TEST_F(SnapshotPageSourceTest, DropClearsClampedRanges) {
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, false), 0);
  const uint64_t start = s.owed_pages();  // 121

  // Pages 60..69 of region 1 straddle a bitmap word; page 60 is absent: 9 owed.
  s.drop(1, 60, 10);
  EXPECT_EQ(s.owed_pages(), start - 9);
  EXPECT_EQ(s.dropped_pages(), 9u);
  for (uint64_t p = 60; p < 70; p++) EXPECT_EQ(s.peek(1, p).kind, UPageKind::kZero) << p;
  EXPECT_EQ(s.peek(1, 59).kind, UPageKind::kData);
  EXPECT_EQ(s.peek(1, 71).kind, UPageKind::kData);

  // Overlapping an earlier drop: only the pages still owed count (65..74 -> 71..74, 70 absent).
  s.drop(1, 65, 10);
  EXPECT_EQ(s.owed_pages(), start - 13);
  EXPECT_EQ(s.dropped_pages(), 13u);

  // Past the end: clamped to 125..129, all owed.
  s.drop(1, 125, 1000);
  EXPECT_EQ(s.owed_pages(), start - 18);
  s.consume(1, 1);
  // A count that would overflow first + count: clamped to 100..129, of which 100..124 are still
  // owed but for 100, 110 and 120 (absent): 22.
  s.drop(1, 100, ~uint64_t(0));
  EXPECT_EQ(s.owed_pages(), start - 18 - 1 - 22);
  s.drop(1, 130, 5);  // entirely out of range
  s.drop(1, 0, 0);
  s.drop(-1, 0, 10);
  s.drop(5, 0, 10);
  EXPECT_EQ(s.owed_pages(), start - 41);

  // Whole region 0: 4 data-like and 2 zero pages.
  s.drop(0, 0, 8);
  EXPECT_EQ(s.owed_pages(), start - 45);
  EXPECT_EQ(s.owed_zero_pages(), 0u);
  EXPECT_EQ(s.dropped_pages(), 13u + 5u + 22u + 6u);
  EXPECT_EQ(s.served_pages(), 1u);

  RegionAccount a1 = s.region_account(1);
  EXPECT_EQ(a1.served, 1u);
  EXPECT_EQ(a1.dropped, 40u);
  EXPECT_EQ(a1.still_owed, 117u - 41u);
  EXPECT_EQ(s.owed_pages(), a1.still_owed);

  // Drop everything: nothing owed.
  s.drop(1, 0, 130);
  EXPECT_EQ(s.owed_pages(), 0u);
  EXPECT_EQ(s.owed_all_pages(), 0u);
  for (uint64_t p = 0; p < 130; p++) ASSERT_EQ(s.peek(1, p).kind, UPageKind::kZero) << p;
}

TEST_F(SnapshotPageSourceTest, ReportSummarisesServedAndUntouched) {
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, false), 0);
  s.consume(0, 0);
  s.consume(0, 1);
  s.drop(0, 4, 2);
  SourceReport rep = s.report();
  EXPECT_EQ(rep.regions, 3u);
  EXPECT_EQ(rep.regions_served, 1u);
  EXPECT_EQ(rep.pages_owed_at_start, 123u);
  EXPECT_EQ(rep.pages_served, 2u);
  EXPECT_EQ(rep.pages_dropped, 2u);
  EXPECT_EQ(rep.pages_still_owed, 119u);
  EXPECT_EQ(rep.pages_never_touched, 121u);
  EXPECT_EQ(rep.corrupt_pages, 0u);
  EXPECT_EQ(rep.pages_verified, 0u);
}

TEST_F(SnapshotPageSourceTest, CorruptPageWithVerification) {
  corrupt(0, 4);  // page B
  SnapshotReader r;
  open_reader(r);  // the index is intact: open succeeds
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, true), 0);

  uffdlazy::PageContent c = s.peek(0, 4);
  EXPECT_EQ(c.kind, UPageKind::kCorrupt);
  EXPECT_EQ(c.data, nullptr);
  EXPECT_EQ(s.corrupt_pages(), 1u);
  EXPECT_EQ(s.peek(0, 4).kind, UPageKind::kCorrupt);  // never cached as good
  EXPECT_EQ(s.corrupt_pages(), 2u);
  EXPECT_TRUE(s.is_owed(0, 4));

  c = s.peek(0, 0);
  EXPECT_EQ(c.kind, UPageKind::kData);
  EXPECT_EQ(memcmp(c.data, a_.data(), ps_), 0);
  EXPECT_EQ(s.verified_pages(), 1u);
  s.peek(0, 0);  // cached: not hashed again
  EXPECT_EQ(s.verified_pages(), 1u);
  EXPECT_EQ(s.peek(0, 3).kind, UPageKind::kDuplicate);  // its own bit
  EXPECT_EQ(s.verified_pages(), 2u);
  EXPECT_EQ(s.peek(0, 5).kind, UPageKind::kData);
  EXPECT_EQ(s.peek(0, 1).kind, UPageKind::kZero);  // zero pages are not hashed
  EXPECT_EQ(s.verified_pages(), 3u);
  EXPECT_EQ(s.report().corrupt_pages, 2u);
  EXPECT_EQ(s.report().pages_verified, 3u);
}

TEST_F(SnapshotPageSourceTest, CorruptPageWithoutVerification) {
  corrupt(0, 4);
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, false), 0);
  uffdlazy::PageContent c = s.peek(0, 4);
  EXPECT_EQ(c.kind, UPageKind::kData);
  EXPECT_EQ(c.data, r.page(0, 4).data);
  EXPECT_NE(memcmp(c.data, b_.data(), ps_), 0);  // the damaged bytes, as stored
  EXPECT_EQ(memcmp(c.data, b_.data(), 100), 0);
  EXPECT_EQ(s.corrupt_pages(), 0u);
  EXPECT_EQ(s.verified_pages(), 0u);
}

TEST_F(SnapshotPageSourceTest, WorksThroughThePageSourceInterface) {
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, false), 0);
  uffdlazy::PageSource* src = &s;
  EXPECT_EQ(src->peek(0, 5).kind, UPageKind::kData);
  src->consume(0, 5);
  src->drop(0, 0, 2);
  EXPECT_EQ(src->owed_pages(), 119u);
  EXPECT_EQ(s.owed_zero_pages(), 1u);

  // init again starts over.
  ASSERT_EQ(s.init(&r, false), 0);
  EXPECT_EQ(s.owed_pages(), 121u);
  EXPECT_EQ(s.served_pages(), 0u);
  s.release();
  EXPECT_EQ(s.owed_pages(), 0u);
  EXPECT_EQ(s.peek(0, 0).kind, UPageKind::kZero);
}

TEST_F(SnapshotPageSourceTest, LocateTellsKindOwedAndBlockWithoutReadingData) {
  SnapshotReader r;
  open_reader(r);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, true), 0);
  uffdlazy::PageLocation l = s.locate(0, 0);
  EXPECT_TRUE(l.owed);
  EXPECT_EQ(l.kind, UPageKind::kData);
  EXPECT_EQ(l.where, r.page(0, 0).offset);
  EXPECT_EQ(s.locate(0, 3).kind, UPageKind::kDuplicate);
  EXPECT_EQ(s.locate(0, 3).where, l.where);  // the duplicate's block is page 0's
  l = s.locate(0, 1);
  EXPECT_TRUE(l.owed);
  EXPECT_EQ(l.kind, UPageKind::kZero);
  EXPECT_FALSE(s.locate(0, 2).owed);  // absent
  EXPECT_EQ(s.locate(1, 2).where, s.locate(1, 1).where + ps_);  // the writer lays blocks out in order
  s.consume(0, 0);
  EXPECT_FALSE(s.locate(0, 0).owed);
  EXPECT_EQ(s.verified_pages(), 0u) << "locate reads no page data";
}

// Short runs come through pread into the caller's buffer, long ones straight from the mapping;
// either way each page is checked, and a damaged page ends the run just before it.
TEST_F(SnapshotPageSourceTest, ReadPagesChecksEachPageByPreadAndFromTheMapping) {
  corrupt(1, 35);
  SnapshotReader r;
  open_reader(r);
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, true, fd), 0);
  EXPECT_EQ(s.descriptor(), fd);
  std::vector<uint8_t> stage(64 * ps_, 0xee);
  const void* data = nullptr;

  // 3 pages (pread): into the stage.
  uffdlazy::PagesRead got = s.read_pages(1, 31, 3, stage.data(), ps_, &data);
  EXPECT_EQ(got.pages, 3u);
  EXPECT_EQ(got.stop, uffdlazy::PagesRead::kAll);
  EXPECT_EQ(data, stage.data());
  for (uint64_t i = 0; i < 3; i++) {
    uint64_t tag;
    memcpy(&tag, stage.data() + i * ps_, sizeof tag);
    EXPECT_EQ(tag, 31 + i);
  }
  // Pages 33..36 by pread: stops at the damaged page 35.
  data = nullptr;
  got = s.read_pages(1, 33, 4, stage.data(), ps_, &data);
  EXPECT_EQ(got.pages, 2u);
  EXPECT_EQ(got.stop, uffdlazy::PagesRead::kCorrupt);
  EXPECT_EQ(data, stage.data()) << "the good prefix is where data says";
  // 9 pages (long: from the mapping, no copy); 31..39 stops at page 35 too. (Every 10th page of
  // region 1 is absent, so 21..29 and 31..39 are the runs of adjacent blocks.)
  got = s.read_pages(1, 21, 9, stage.data(), ps_, &data);
  EXPECT_EQ(got.pages, 9u);
  EXPECT_EQ(data, r.page(1, 21).data);
  data = nullptr;
  got = s.read_pages(1, 31, 9, stage.data(), ps_, &data);
  EXPECT_EQ(got.pages, 4u);
  EXPECT_EQ(data, r.page(1, 31).data);
  EXPECT_EQ(got.stop, uffdlazy::PagesRead::kCorrupt);
  EXPECT_EQ(s.corrupt_pages(), 2u);
  EXPECT_EQ(s.verified_pages(), 4u + 9u);  // 31..34 and 21..29, each counted once
  // Nothing was consumed: reading is not serving.
  EXPECT_EQ(s.served_pages(), 0u);
  s.release();
  ::close(fd);
}

TEST_F(SnapshotPageSourceTest, ReadPagesWithoutVerificationHandsOutTheStoredBytes) {
  SnapshotReader r;
  open_reader(r);
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  SnapshotPageSource s;
  ASSERT_EQ(s.init(&r, false, fd), 0);
  std::vector<uint8_t> stage(4 * ps_);
  const void* data = nullptr;
  uffdlazy::PagesRead got = s.read_pages(0, 4, 2, stage.data(), ps_, &data);  // B, C
  ASSERT_EQ(got.pages, 2u);
  EXPECT_EQ(memcmp(data, b_.data(), ps_), 0);
  EXPECT_EQ(memcmp(static_cast<const uint8_t*>(data) + ps_, c_.data(), ps_), 0);
  EXPECT_EQ(s.verified_pages(), 0u);
  s.release();
  ::close(fd);
}

}  // namespace
