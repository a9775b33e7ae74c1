// The working-set sidecar file: what a restored run touched, written at exit and read back for
// the snapshot it was recorded from, and refused for any other snapshot or when damaged.
#include "core/snapshot/working_set.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/snapshot/snapshot_writer.h"

namespace uffdlazy::snap {
namespace {

class WorkingSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uffdlazy-ws-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ps_ = uint32_t(sysconf(_SC_PAGESIZE));
    write_snapshot(file("a.snap"));
    ASSERT_TRUE(snap_.open(file("a.snap").c_str()).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  // Two regions of 16 and 8 data pages.
  void write_snapshot(const std::string& path) {
    ModuleIdentity exe;
    exe.set_path("/usr/bin/app", 12);
    SnapshotWriter w;
    WriterOptions o;
    o.sync = false;
    std::vector<uint8_t> page(ps_);
    ASSERT_TRUE(w.open(path.c_str(), o).ok());
    ASSERT_TRUE(w.begin(exe, 0).ok());
    for (uint64_t pages : {16, 8}) {
      RegionInfo info{0x10000000 * (pages / 8), pages * ps_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, {}};
      ASSERT_TRUE(w.add_region_with(info, [&](uint64_t i) -> const void* {
                     memset(page.data(), int(i + pages), ps_);
                     return page.data();
                   }).ok());
    }
    ASSERT_TRUE(w.commit().ok());
  }

  std::string bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void put(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
  }

  std::string dir_;
  uint32_t ps_ = 4096;
  SnapshotReader snap_;
};

TEST_F(WorkingSetTest, TouchesBecomeRunsInFirstTouchOrderAndReadBack) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(24, ps_));
  for (auto [r, p] : std::vector<std::pair<int, uint64_t>>{{0, 5}, {0, 6}, {0, 7}, {1, 3}, {0, 8}, {0, 0}, {1, 4}})
    log.touched(r, p);
  EXPECT_EQ(log.run_count(), 5u);
  EXPECT_EQ(log.page_count(), 7u);
  const std::string path = file("a.ws");
  ASSERT_TRUE(log.write(path.c_str(), snap_).ok());
  EXPECT_EQ(bytes(path).size(), sizeof(WorkingSetHeader) + 5 * sizeof(SourceRun));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(getpid())));

  WorkingSetReader ws;
  WsStatus st = ws.open(path.c_str(), snap_);
  ASSERT_TRUE(st.ok()) << int(st.error);
  ASSERT_EQ(ws.run_count(), 5u);
  EXPECT_EQ(ws.page_count(), 7u);
  EXPECT_FALSE(ws.truncated());
  const SourceRun want[] = {{0, 3, 5}, {1, 1, 3}, {0, 1, 8}, {0, 1, 0}, {1, 1, 4}};
  for (size_t i = 0; i < 5; i++) {
    EXPECT_EQ(ws.runs()[i].source, want[i].source) << i;
    EXPECT_EQ(ws.runs()[i].pages, want[i].pages) << i;
    EXPECT_EQ(ws.runs()[i].first_page, want[i].first_page) << i;
  }
}

TEST_F(WorkingSetTest, AnEmptyWorkingSetIsValid) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(24, ps_));
  ASSERT_TRUE(log.write(file("empty.ws").c_str(), snap_).ok());
  WorkingSetReader ws;
  ASSERT_TRUE(ws.open(file("empty.ws").c_str(), snap_).ok());
  EXPECT_EQ(ws.run_count(), 0u);
}

TEST_F(WorkingSetTest, AWorkingSetOfAnotherSnapshotIsRefused) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(24, ps_));
  log.touched(0, 1);
  ASSERT_TRUE(log.write(file("a.ws").c_str(), snap_).ok());
  // The same program, the same regions and contents, recorded again: another snapshot.
  write_snapshot(file("b.snap"));
  SnapshotReader b;
  ASSERT_TRUE(b.open(file("b.snap").c_str()).ok());
  WorkingSetReader ws;
  WsStatus st = ws.open(file("a.ws").c_str(), b);
  EXPECT_EQ(st.error, WsError::kForeign);
  LineWriter w;
  describe(st, "/x/b.snap", w);
  EXPECT_EQ(std::string(w.data(), w.size()),
            "this working set was recorded from another snapshot, not /x/b.snap (record it again with --ws-record "
            "while restoring that snapshot)");
  EXPECT_EQ(ws.runs(), nullptr);
}

TEST_F(WorkingSetTest, DamagedTruncatedOrOtherFilesAreRefused) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(24, ps_));
  log.touched(0, 1);
  log.touched(1, 2);
  const std::string good = file("good.ws");
  ASSERT_TRUE(log.write(good.c_str(), snap_).ok());
  const std::string data = bytes(good);
  WorkingSetReader ws;

  std::string flipped = data;
  flipped[sizeof(WorkingSetHeader) + 9] ^= 1;  // a run's first page
  put(file("flipped.ws"), flipped);
  EXPECT_EQ(ws.open(file("flipped.ws").c_str(), snap_).error, WsError::kChecksum);

  put(file("short.ws"), data.substr(0, data.size() - 16));
  WsStatus st = ws.open(file("short.ws").c_str(), snap_);
  EXPECT_EQ(st.error, WsError::kTruncated);
  EXPECT_EQ(st.a, data.size() - 16);
  EXPECT_EQ(st.b, data.size());

  put(file("header.ws"), data.substr(0, 40));
  EXPECT_EQ(ws.open(file("header.ws").c_str(), snap_).error, WsError::kTruncated);

  EXPECT_EQ(ws.open(file("a.snap").c_str(), snap_).error, WsError::kBadMagic);
  put(file("empty.ws"), "");
  EXPECT_EQ(ws.open(file("empty.ws").c_str(), snap_).error, WsError::kTruncated);
  EXPECT_EQ(ws.open(file("missing.ws").c_str(), snap_).error, WsError::kOpenFailed);
  EXPECT_EQ(ws.open(dir_.c_str(), snap_).error, WsError::kNotRegularFile);

  std::string future = data;
  future[8] = 2;  // version_major
  put(file("future.ws"), future);
  st = ws.open(file("future.ws").c_str(), snap_);
  EXPECT_EQ(st.error, WsError::kUnsupportedVersion);
  EXPECT_EQ(st.a, 2u);
}

TEST_F(WorkingSetTest, RunsOutsideTheSnapshotAreRefused) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(24, ps_));
  log.touched(1, 8);  // region 1 has 8 pages: page 8 does not exist
  ASSERT_TRUE(log.write(file("out.ws").c_str(), snap_).ok());
  WorkingSetReader ws;
  WsStatus st = ws.open(file("out.ws").c_str(), snap_);
  EXPECT_EQ(st.error, WsError::kMalformed);
  ASSERT_NE(st.what, nullptr);
  EXPECT_STREQ(st.what, "a run lies outside the snapshot's regions");

  WorkingSetLog other;
  ASSERT_TRUE(other.init(24, ps_));
  other.touched(2, 0);  // no region 2
  ASSERT_TRUE(other.write(file("out2.ws").c_str(), snap_).ok());
  EXPECT_EQ(ws.open(file("out2.ws").c_str(), snap_).error, WsError::kMalformed);
}

TEST_F(WorkingSetTest, AFullLogKeepsTheFirstTouchesAndSaysItIsTruncated) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(2, ps_));
  log.touched(0, 1);
  log.touched(0, 9);
  log.touched(0, 10);  // extends the last run: no new room needed
  log.touched(0, 3);   // no room
  EXPECT_EQ(log.run_count(), 2u);
  EXPECT_EQ(log.page_count(), 3u);
  ASSERT_TRUE(log.write(file("full.ws").c_str(), snap_).ok());
  WorkingSetReader ws;
  ASSERT_TRUE(ws.open(file("full.ws").c_str(), snap_).ok());
  EXPECT_TRUE(ws.truncated());
  EXPECT_EQ(ws.page_count(), 3u);
}

TEST_F(WorkingSetTest, AFrozenLogIgnoresLaterTouches) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(8, ps_));
  log.touched(0, 1);
  log.freeze();
  log.touched(0, 2);
  log.touched(1, 0);
  EXPECT_EQ(log.run_count(), 1u);
  EXPECT_EQ(log.page_count(), 1u);
}

TEST_F(WorkingSetTest, AnUnwritablePathFailsWithTheReasonAndLeavesNothing) {
  WorkingSetLog log;
  ASSERT_TRUE(log.init(8, ps_));
  log.touched(0, 1);
  WsStatus st = log.write(file("no-such-dir/x.ws").c_str(), snap_);
  EXPECT_EQ(st.error, WsError::kWrite);
  EXPECT_EQ(st.err, ENOENT);
  EXPECT_FALSE(std::filesystem::exists(file("no-such-dir")));
}

}  // namespace
}  // namespace uffdlazy::snap
