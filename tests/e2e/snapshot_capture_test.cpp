// A snapshot taken while several threads write is one instant of every region: recorded mid-run
// (after a delay, or on a signal) from snapshot_consistency, restored, and checked by the target's
// invariant (each region's words, in write order, are K...K then K-1...K-1: a single split).
#include <gtest/gtest.h>
#include <time.h>

#include <filesystem>
#include <string>

#include "core/snapshot/snapshot_reader.h"
#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

std::string consistency() { return target_path("snapshot_consistency"); }

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// The recording run's own checks: it ran to its end, and exactly one snapshot of its four regions
// was written while it ran, between `min_s` and `max_s` seconds after `started_ns`.
void expect_recorded_mid_run(const ProcessResult& r, const std::string& file, uint64_t started_ns, double min_s,
                             double max_s) {
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.out, "run writers=4 pages=256 done\n");
  EXPECT_EQ(count_of(r.err, "uffdlazy: snapshot "), 1u) << r.err;
  RecordLine line = record_line(r.err, file);
  ASSERT_TRUE(line.found) << r.err;
  EXPECT_EQ(line.regions, 4);
  EXPECT_EQ(line.pages, 1024);
  snap::SnapshotReader reader;
  ASSERT_TRUE(reader.open(file.c_str()).ok());
  const double at = double(int64_t(reader.header().created_ns - started_ns)) / 1e9;
  EXPECT_GE(at, min_s) << "captured too early";
  EXPECT_LE(at, max_s) << "captured too late (at exit?)";
}

void expect_consistent(const std::string& file) {
  ProcessResult r = restore(file, {}, {consistency(), "check"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "consistent regions=4\n") << r.err;
  RestoreLine line = restore_line(r.err, file);
  ASSERT_TRUE(line.found) << r.err;
  EXPECT_EQ(line.matched, 4);
  EXPECT_EQ(line.regions, 4);
  // Every page the capture found (an early capture may come before a writer's first round ends,
  // and a page never written is absent) is served once the check reads it.
  snap::SnapshotReader reader;
  ASSERT_TRUE(reader.open(file.c_str()).ok());
  long present = 0;
  for (uint64_t i = 0; i < reader.region_count(); i++)
    present += long(reader.region(i).page_count - reader.region(i).absent_pages);
  EXPECT_GT(present, 0);
  EXPECT_EQ(line.served, present);
}

// A region grown by an mremap that had to move records whole: the tail the move added is part of
// the region (before, the table kept the old length and the capture left the tail out).
TEST(SnapshotCapture, RegionGrownByAMovingMremapIsRecordedWhole) {
  TempDir dir;
  const std::string file = dir.file("grown.snap");
  ProcessResult r = record(file, {}, {target_path("memory_rules"), "grow_and_move"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(r.out, "grow and move ok\n");
  snap::SnapshotReader reader;
  ASSERT_TRUE(reader.open(file.c_str()).ok());
  int whole = 0;
  std::string seen;
  for (uint64_t i = 0; i < reader.region_count(); i++) {
    const snap::RegionRecord& rec = reader.region(i);
    seen += " " + std::to_string(rec.page_count) + "/" + std::to_string(rec.data_pages + rec.duplicate_pages);
    // 32 pages stamped before the move, 96 after it: 128 pages of data.
    if (rec.page_count == 128 && rec.data_pages + rec.duplicate_pages == 128) whole++;
  }
  EXPECT_EQ(whole, 1) << "regions (pages/data pages):" << seen;
}

// A capture process killed before it finishes (here by a thread of the program itself, while the
// program exits) leaves nothing behind, says so, and `uffdlazy record` fails.
TEST(SnapshotCapture, KilledCaptureSaysSoLeavesNothingAndFails) {
  TempDir dir;
  const std::string file = dir.file("killed.snap");
  ProcessResult r = record(file, {}, {target_path("capture_victim")});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("uffdlazy: snapshot " + file + ": the capture process was killed by signal 9; nothing written"),
            std::string::npos)
      << r.err;
  std::string left;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) left += " " + e.path().filename().string();
  EXPECT_EQ(left, "") << "files left behind";
}

TEST(SnapshotCapture, CheckWithoutRestoreFails) {
  ProcessResult r = run_process({consistency(), "check"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("region 0: never written"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("inconsistent regions=4 of 4"), std::string::npos) << r.out;
}

TEST(SnapshotCapture, InvariantCheckRejectsTornImages) {
  // The check the captures must pass, run on hand-made images: it accepts every image a single
  // instant can produce and rejects the torn ones (a second split, a newer or older round past the
  // split, a torn page, a stray write, nothing at all).
  ProcessResult r = run_process({consistency(), "selftest"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(count_of(r.out, ": accepted\n"), 4u) << r.out;
  EXPECT_EQ(count_of(r.out, ": rejected\n"), 6u) << r.out;
  EXPECT_NE(r.out.find("selftest wrong=0\n"), std::string::npos) << r.out;
}

TEST(SnapshotCapture, AfterDelayWhileFourThreadsWrite) {
  TempDir dir;
  const std::string file = dir.file("after.snap");
  const uint64_t t0 = realtime_ns();
  ProcessResult r = record(file, {"--at", "after=0.5"}, {consistency(), "run", "1.5"});
  expect_recorded_mid_run(r, file, t0, 0.45, 1.3);
  expect_consistent(file);
}

TEST(SnapshotCapture, OnSignalWhileFourThreadsWrite) {
  TempDir dir;
  const std::string file = dir.file("signal.snap");
  const uint64_t t0 = realtime_ns();
  ProcessResult r = run_signalled_after(
      {cli_path(), "record", "-o", file, "--at", "signal=USR2", "--", consistency(), "run", "1.5"}, 0.5, "USR2");
  expect_recorded_mid_run(r, file, t0, 0.45, 1.3);
  expect_consistent(file);
}

TEST(SnapshotCapture, OnSignalThroughTheEnvironment) {
  TempDir dir;
  const std::string file = dir.file("env.snap");
  const uint64_t t0 = realtime_ns();
  ProcessResult r = run_signalled_after(
      {consistency(), "run", "1.0"}, 0.4, "USR2",
      {{"LD_PRELOAD", shim_path()}, {"UFFDLAZY_RECORD", file}, {"UFFDLAZY_RECORD_AT", "signal=USR2"}});
  expect_recorded_mid_run(r, file, t0, 0.35, 0.95);
  expect_consistent(file);
}

TEST(SnapshotCapture, RepeatedEarlyCapturesAreConsistent) {
  // Early captures meet the writers still faulting their first round in, at different moments.
  TempDir dir;
  for (const char* at : {"after=0.1", "after=0.2", "after=0.3"}) {
    SCOPED_TRACE(at);
    const std::string file = dir.file(std::string(at + 6) + ".snap");
    ProcessResult r = record(file, {"--at", at}, {consistency(), "run", "0.5"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(record_line(r.err, file).found) << r.err;
    expect_consistent(file);
  }
}

}  // namespace
}  // namespace uffdlazy::test
