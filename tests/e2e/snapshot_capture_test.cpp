// A snapshot taken while several threads write is one instant of every region: recorded mid-run
// (after a delay, or on a signal) from snapshot_consistency, restored, and checked by the target's
// invariant (each region's words, in write order, are K...K then K-1...K-1: a single split).
#include <gtest/gtest.h>
#include <time.h>

#include <cstdio>
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

// When the writers of a `run` started and stopped ("writers started=NS stopped=NS" on stderr).
struct WriterSpan {
  uint64_t started = 0, stopped = 0;
};
WriterSpan writer_span(const std::string& err) {
  WriterSpan span;
  const size_t at = err.find("writers started=");
  if (at != std::string::npos)
    std::sscanf(err.c_str() + at, "writers started=%lu stopped=%lu", &span.started, &span.stopped);
  return span;
}

uint64_t created_ns(const std::string& file) {
  snap::SnapshotReader reader;
  if (!reader.open(file.c_str()).ok()) return 0;
  return reader.header().created_ns;
}

// The recording run's own checks: it ran to its end (it stops once the snapshot exists), and
// exactly one snapshot of its four regions was written while every writer was writing, no sooner
// than `min_delay_s` after `started_ns`. Nothing here depends on the host's speed: the program
// writes until the snapshot appears, however long the capture takes to come.
void expect_recorded_mid_run(const ProcessResult& r, const std::string& file, uint64_t started_ns,
                             double min_delay_s) {
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.out, "run writers=4 pages=256 done\n");
  EXPECT_EQ(count_of(r.err, "uffdlazy: snapshot "), 1u) << r.err;
  RecordLine line = record_line(r.err, file);
  ASSERT_TRUE(line.found) << r.err;
  EXPECT_EQ(line.regions, 4);
  EXPECT_EQ(line.pages, 1024);
  const uint64_t created = created_ns(file);
  const WriterSpan span = writer_span(r.err);
  ASSERT_NE(span.started, 0u) << r.err;
  EXPECT_GE(double(int64_t(created - started_ns)) / 1e9, min_delay_s) << "captured too early";
  EXPECT_GE(created, span.started) << "captured before every writer started";
  EXPECT_LE(created, span.stopped) << "captured after the writers stopped (at exit?)";
}

// `uffdlazy record --at after=DELAY` of a `run` into `file`, the capture landing while the writers
// write. A delay counts from the program's start, so on a host slow enough to start the writers
// only after it, the capture comes first: then the delay is doubled and the run made again (the
// tool did what it was asked; the test needs the capture mid-run to judge it).
ProcessResult record_after_delay_mid_run(const std::string& file, double delay, uint64_t* t0, double* used_delay) {
  ProcessResult r;
  for (int attempt = 0; attempt < 6; attempt++, delay *= 2) {
    std::filesystem::remove(file);
    char at[32];
    std::snprintf(at, sizeof at, "after=%.3f", delay);
    *t0 = realtime_ns();
    *used_delay = delay;
    r = record(file, {"--at", at}, {consistency(), "run", file});
    const WriterSpan span = writer_span(r.err);
    if (r.exit_code != 0 || span.started == 0 || created_ns(file) >= span.started) break;
  }
  return r;
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
  uint64_t t0;
  double delay;
  ProcessResult r = record_after_delay_mid_run(file, 0.5, &t0, &delay);
  expect_recorded_mid_run(r, file, t0, delay - 0.05);
  expect_consistent(file);
}

TEST(SnapshotCapture, OnSignalWhileFourThreadsWrite) {
  TempDir dir;
  const std::string file = dir.file("signal.snap");
  const std::string ready = dir.file("ready");
  const uint64_t t0 = realtime_ns();
  ProcessResult r = run_signalled_when_ready(
      {cli_path(), "record", "-o", file, "--at", "signal=USR2", "--", consistency(), "run", file, ready}, ready, "USR2");
  expect_recorded_mid_run(r, file, t0, 0);
  expect_consistent(file);
}

TEST(SnapshotCapture, OnSignalThroughTheEnvironment) {
  TempDir dir;
  const std::string file = dir.file("env.snap");
  const std::string ready = dir.file("ready");
  const uint64_t t0 = realtime_ns();
  ProcessResult r = run_signalled_when_ready(
      {consistency(), "run", file, ready}, ready, "USR2",
      {{"LD_PRELOAD", shim_path()}, {"UFFDLAZY_RECORD", file}, {"UFFDLAZY_RECORD_AT", "signal=USR2"}});
  expect_recorded_mid_run(r, file, t0, 0);
  expect_consistent(file);
}

TEST(SnapshotCapture, RepeatedEarlyCapturesAreConsistent) {
  // Early captures meet the writers still faulting their first round in, at different moments.
  TempDir dir;
  for (double at : {0.1, 0.2, 0.3}) {
    SCOPED_TRACE(at);
    const std::string file = dir.file(std::to_string(at) + ".snap");
    uint64_t t0;
    double delay;
    ProcessResult r = record_after_delay_mid_run(file, at, &t0, &delay);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(record_line(r.err, file).found) << r.err;
    expect_consistent(file);
  }
}

}  // namespace
}  // namespace uffdlazy::test
