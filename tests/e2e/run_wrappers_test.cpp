// Runs in which several processes load the shim: wrappers (env, timeout, sh -c) in front of the
// program, and the rules that keep them from stepping on each other (core/pager/run_state.h): the
// snapshot is restored by the program it was recorded from and passed on by the others; the
// plain name of a recording, report or trace holds the process that did the most; a name with %p
// gets one file per process. And a recording that fails or never happens says so, with status 4.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

std::string rules() { return target_path("snapshot_rules"); }

const std::string kCheckAll =
    "region 0: pages=96 recorded=96 zeroed=0 ok\nregion 1: pages=64 recorded=64 zeroed=0 ok\n"
    "region 2: pages=80 recorded=80 zeroed=0 ok\nregion 3: pages=64 recorded=64 zeroed=0 ok\n"
    "region 4: pages=64 recorded=64 zeroed=0 ok\nregion 5: pages=64 recorded=64 zeroed=0 ok\n"
    "region 6: pages=64 recorded=64 zeroed=0 ok\n"
    "check all: regions=7 pages=496 recorded=496 zeroed=0 mismatches=0 failures=0\n";

struct Recorded {
  TempDir dir;
  std::string file;
  ProcessResult result;
};

Recorded& recording() {
  static Recorded* r = [] {
    auto* x = new Recorded;
    x->file = x->dir.file("rules.snap");
    x->result = record(x->file, {}, {rules(), "fill"});
    return x;
  }();
  return *r;
}

class Wrapped : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(Wrapped, RestoreReachesTheProgramThroughItsWrapper) {
  Recorded& rec = recording();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.err;
  std::vector<std::string> program = GetParam();
  ProcessResult res = restore(rec.file, {}, program);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, kCheckAll) << res.err;
  EXPECT_EQ(count_of(res.err, "uffdlazy: restore "), 1u) << res.err;
  RestoreLine line = restore_line(res.err, rec.file);
  ASSERT_TRUE(line.found) << res.err;
  EXPECT_EQ(line.matched, 7);
}

TEST_P(Wrapped, RecordReachesTheProgramThroughItsWrapper) {
  TempDir dir;
  const std::string file = dir.file("w.snap");
  std::vector<std::string> program = GetParam();
  if (program[0] == "sh") {
    program[2] = rules() + " fill; true";
  } else {
    program.resize(program.size() - 2);
    program.push_back("fill");
  }
  ProcessResult rec = record(file, {}, program);
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  RecordLine line = record_line(rec.err, file);
  ASSERT_TRUE(line.found) << rec.err;
  EXPECT_EQ(line.regions, 7) << "the program's snapshot, not the wrapper's";
  ProcessResult res = restore(file, {}, {rules(), "check", "all"});
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, kCheckAll) << res.err;
}

INSTANTIATE_TEST_SUITE_P(RunWrappers, Wrapped,
                         ::testing::Values(std::vector<std::string>{"env", "X=1", rules(), "check", "all"},
                                           std::vector<std::string>{"timeout", "60", rules(), "check", "all"},
                                           std::vector<std::string>{"sh", "-c", rules() + " check all; true"}),
                         [](const ::testing::TestParamInfo<std::vector<std::string>>& i) { return i.param[0]; });

// A wrapper that closes every descriptor before it execs the program (closefrom, Python's
// subprocess): the program no longer inherits the run page's descriptor, and reaches the page
// through the uffdlazy command's own (docs/descriptors.md), so the command still sees its
// restore and its snapshot.
TEST(RunWrappers, WrapperThatClosesEveryDescriptorStillPassesTheRunOn) {
  Recorded& rec = recording();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.err;
  const std::string closer = target_path("fd_numbers");
  ProcessResult res = restore(rec.file, {}, {closer, "closefrom_exec", rules(), "check", "all"});
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, kCheckAll) << res.err;
  EXPECT_EQ(count_of(res.err, "uffdlazy: restore "), 1u) << res.err;

  TempDir dir;
  const std::string file = dir.file("closed.snap");
  ProcessResult rec2 = record(file, {}, {closer, "closefrom_exec", rules(), "fill"});
  EXPECT_EQ(rec2.exit_code, 0) << rec2.out << rec2.err;
  RecordLine line = record_line(rec2.err, file);
  ASSERT_TRUE(line.found) << rec2.err;
  EXPECT_EQ(line.regions, 7) << rec2.err;
}

TEST(RunWrappers, SnapshotThatNoProgramOfTheRunMatchesIsAnError) {
  Recorded& rec = recording();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.err;
  // The command line names the program, but the run never starts it.
  ProcessResult res = restore(rec.file, {}, {"sh", "-c", "echo snapshot_rules >/dev/null"});
  EXPECT_EQ(res.exit_code, 2) << res.out << res.err;
  EXPECT_NE(res.err.find("no program of this run is the one it was recorded from"), std::string::npos) << res.err;
  // A command line that does not name it is refused before anything runs.
  ProcessResult other = restore(rec.file, {}, {target_path("memory_rules"), "touch", "8"});
  EXPECT_EQ(other.exit_code, 2) << other.out << other.err;
  EXPECT_EQ(other.out, "");
  EXPECT_NE(other.err.find("foreign snapshot"), std::string::npos) << other.err;
}

// UFFDLAZY_REPORT=r.json LD_PRELOAD=... timeout 60 prog: timeout loads the shim too and exits
// last; the report must still be the program's.
TEST(RunWrappers, PlainReportNameHoldsTheProcessThatServedTheMostFaults) {
  TempDir dir;
  const std::string report = dir.file("r.json");
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_REPORT", report}};
  ProcessResult r = run_process({"timeout", "60", target_path("memory_rules"), "touch", "512"}, opt);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string json = read_file(report);
  const size_t at = json.find("\"program\"");
  ASSERT_NE(at, std::string::npos) << json;
  EXPECT_NE(json.find("memory_rules", at), std::string::npos) << json.substr(0, 400);
  EXPECT_EQ(json.find("\"faults\": 0,"), std::string::npos) << json.substr(0, 400);
}

TEST(RunWrappers, PidInTheNameGivesEachProcessItsOwnReport) {
  TempDir dir;
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_REPORT", dir.file("r.%p.json")}};
  ProcessResult r = run_process({"sh", "-c", target_path("memory_rules") + " touch 64; " +
                                                 target_path("memory_rules") + " touch 32; true"}, opt);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // One per program (the shell leaves by _exit, which runs no exit-time code, its own included).
  EXPECT_EQ(dir.list().size(), 2u);
}

TEST(RunWrappers, CaptureThatNeverHappensSaysSoAndFails) {
  TempDir dir;
  const std::string file = dir.file("never.snap");
  ProcessResult r = record(file, {"--at", "after=30"}, {rules(), "fill"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("nothing was recorded: the run ended before the capture moment (after=30)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("uffdlazy record: no snapshot was written"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(file));
}

TEST(RunWrappers, CaptureThatCannotWriteSaysSoAndLeavesNothing) {
  TempDir dir;
  const std::string file = dir.file("big.snap");
  // A file size limit of 64 KiB: the snapshot does not fit, the program itself writes nothing.
  ProcessResult r = run_process({"sh", "-c", "ulimit -f 64; exec \"$0\" record -o \"$1\" -- \"$2\" fill", cli_path(),
                                 file, rules()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
  EXPECT_EQ(dir.list().size(), 0u) << "no snapshot and no temporary file";
}

TEST(RunWrappers, CaptureWithoutProcSaysSoAndFails) {
  TempDir dir;
  const std::string file = dir.file("noproc.snap");
  ProcessResult r = record(file, {}, {"unshare", "-m", "sh", "-c", "mount -t tmpfs none /proc && exec \"$0\" fill",
                                      rules()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot read /proc/self/pagemap"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(file));
}

TEST(RunWrappers, CaptureIsInvisibleToTheProgram) {
  TempDir dir;
  const std::string file = dir.file("quiet.snap");
  ProcessResult r = record(file, {"--at", "after=0.2"}, {target_path("memory_rules"), "quiet_while_recorded"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "quiet: sigchld=0 interrupted=0 wait=no children\n") << r.err;
  EXPECT_TRUE(record_line(r.err, file).found) << r.err;
}

}  // namespace
}  // namespace uffdlazy::test
