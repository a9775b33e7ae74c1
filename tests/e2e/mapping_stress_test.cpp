// The randomized stress target (tests/stress/mapping_stress), run without and with the shim for a
// few seeds: every run must end with "mismatches=0" and status 0, and the shim's run must print
// the same deterministic account as the plain run, byte for byte. Each class of operations has a
// test of its own, so a failure names the class that broke.
#include <gtest/gtest.h>

#include <sstream>

#include "core/snapshot/snapshot_reader.h"
#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

// The target's own: a thread that makes no progress for this long ends the run with status 124 and
// a report of every stalled thread. Long enough that a loaded host never trips it (15 s did: the
// plain run's threads waited that long at their start under two full suites on 2 vCPUs), short
// enough to report before the harness kills the run (120 s).
constexpr int kWatchdogSeconds = 90;

// stdout without the "nondet " line (counts that depend on timing and placement).
std::string deterministic(const std::string& out) {
  std::istringstream in(out);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.rfind("nondet ", 0) == 0) continue;
    kept += line + "\n";
  }
  return kept;
}

// The shim's summary of the target itself, not of the children it spawns.
std::string own_summary(const std::string& err) {
  const std::string tag = "mapping_stress: pid=";
  size_t p = err.find(tag);
  if (p == std::string::npos) return "";
  std::string pid = err.substr(p + tag.size(), err.find('\n', p) - p - tag.size());
  for (size_t i = 0;; i++) {
    std::string line = summary_line(err, i);
    if (line.empty()) return "";
    if (line.rfind("uffdlazy: pid=" + pid + " ", 0) == 0) return line;
  }
}

struct Variant {
  std::vector<std::string> args;  // besides --seed and --watchdog
  std::vector<int> seeds;
  std::string min_size = "4K";    // every block registered, however small
  // A program that closes the shim's userfaultfd turns lazy paging off (docs/descriptors.md): then no faults.
  bool expect_faults = true;
};

void run_variant(const Variant& v) {
  for (int seed : v.seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<std::string> argv = {target_path("mapping_stress"), "--seed", std::to_string(seed), "--watchdog",
                                     std::to_string(kWatchdogSeconds)};
    argv.insert(argv.end(), v.args.begin(), v.args.end());
    std::string command;
    for (const auto& a : argv) command += a + " ";
    ProcessResult plain = run_process(argv);
    RunOptions opt;
    opt.with_shim = true;
    opt.env = {{"UFFDLAZY_STRICT", "1"}, {"UFFDLAZY_STATS", "1"}, {"UFFDLAZY_MIN_SIZE", v.min_size}};
    ProcessResult shim = run_process(argv, opt);
    const std::string repro = "UFFDLAZY_STRICT=1 UFFDLAZY_STATS=1 UFFDLAZY_MIN_SIZE=" + v.min_size +
                              " LD_PRELOAD=" + shim_path() + " " + command;

    ASSERT_EQ(plain.exit_code, 0) << "without the shim: " << command << "\n" << plain.out << plain.err;
    ASSERT_NE(plain.out.find("\nmismatches=0\n"), std::string::npos) << plain.out;
    EXPECT_NE(shim.exit_code, 124) << "hang under the shim: " << repro << "\n" << shim.err;
    EXPECT_EQ(shim.signal, 0) << "killed by a signal under the shim: " << repro << "\n" << shim.err;
    EXPECT_EQ(shim.exit_code, 0) << "under the shim: " << repro << "\n" << shim.out << shim.err;
    EXPECT_NE(shim.out.find("\nmismatches=0\n"), std::string::npos) << repro << "\n" << shim.out << shim.err;
    EXPECT_EQ(deterministic(shim.out), deterministic(plain.out)) << repro;
    // The shim really ran: it served faults (STRICT=1 guarantees it did not fail open).
    std::string summary = own_summary(shim.err);
    ASSERT_FALSE(summary.empty()) << shim.err;
    if (v.expect_faults) {
      EXPECT_GT(summary_field(summary, "faults"), 0) << summary;
    }
    if (::testing::Test::HasFailure()) return;  // one reproducer per class is enough
  }
}

// Everything that passes today with a moderate number of threads; the classes below each have a
// test of their own.
TEST(MappingStress, EightThreadsEveryOperationButMovesAcrossSeveralVmas) {
  run_variant({{"--threads", "8", "--steps", "300", "--ops",
                "map,prot,advise,remap,io,fork,signal,smallstacks,lazystacks,shared"},
               {1, 2, 3}});
}

TEST(MappingStress, ThreadsReadPagesTheirOwnerIsDroppingAndMoving) {
  run_variant({{"--threads", "12", "--steps", "500", "--ops", "shared,advise"}, {1, 2}});
}

TEST(MappingStress, MappingsSmallerThanTheMinimumStayUnregisteredBesideRegisteredOnes) {
  run_variant({{"--threads", "8", "--steps", "300", "--ops", "map,prot,advise,remap,io"}, {4, 5}, "64K"});
}

TEST(MappingStress, ReadAndWriteSyscallsOnDroppedPages) {
  run_variant({{"--threads", "8", "--steps", "400", "--ops", "io,advise"}, {1, 2, 3}});
}

TEST(MappingStress, ForkVforkSpawnSystemUnderscoreForkAndCloneChildrenSeeTheShadow) {
  run_variant({{"--threads", "6", "--steps", "200", "--ops", "fork,map,advise,remap"}, {1, 2}});
}

TEST(MappingStress, SignalHandlersMapAndTouchMemoryOnSmallAndLazilyPagedStacks) {
  run_variant({{"--threads", "12", "--steps", "300", "--ops", "signal,smallstacks,lazystacks,advise,io"}, {1, 2}});
}

// --persist: a region recorded at exit and restored lazily in a second run of the same command
// line. The restored run must print what a plain run prints, and find every page of it.
void run_recorded_then_restored(const std::vector<std::string>& args, int seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<std::string> argv = {target_path("mapping_stress"), "--persist", "--seed", std::to_string(seed),
                                   "--watchdog", std::to_string(kWatchdogSeconds)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string command;
  for (const auto& a : argv) command += a + " ";
  TempDir dir;
  const std::string file = dir.file("stress.snap");
  ProcessResult plain = run_process(argv);
  ASSERT_EQ(plain.exit_code, 0) << command << "\n" << plain.out << plain.err;
  ProcessResult recorded = record(file, {}, argv);
  ASSERT_EQ(recorded.exit_code, 0) << "uffdlazy record -o FILE -- " << command << "\n" << recorded.out << recorded.err;
  ASSERT_EQ(deterministic(recorded.out), deterministic(plain.out));
  ProcessResult restored = restore(file, {}, argv);
  const std::string repro = "uffdlazy record -o FILE -- " + command + "; uffdlazy restore FILE -- " + command;
  EXPECT_EQ(restored.exit_code, 0) << repro << "\n" << restored.out << restored.err;
  EXPECT_NE(restored.out.find("\nmismatches=0\n"), std::string::npos) << repro << "\n" << restored.err;
  EXPECT_EQ(deterministic(restored.out), deterministic(plain.out)) << repro;
  EXPECT_NE(restored.err.find("mapping_stress: persistent region of "), std::string::npos) << restored.err;
  EXPECT_NE(restored.err.find(" pages restored\n"), std::string::npos) << restored.err;
  RestoreLine line = restore_line(restored.err, file);
  EXPECT_TRUE(line.found) << restored.err;
  // The persistent region (memory glibc maps itself is never restored: calloc relies on its zeros).
  EXPECT_GE(line.matched, 1) << restored.err;
}

// (Unmapping right before exit, as the main thread does with lazily paged thread stacks, has a
// test of its own below: RecordingAtExitHoldsOnlyRegionsStillMapped.)
TEST(MappingStress, RestoredRegionIsServedLazilyWhileThreadsMapAdviseRemapAndSignal) {
  for (int seed : {5, 6}) {
    run_recorded_then_restored({"--threads", "8", "--steps", "300", "--ops",
                                "map,prot,advise,remap,io,signal,smallstacks,shared"},
                               seed);
  }
}

// Each class of failure the harness found first, kept separate so each shows by name.

// Many threads faulting while others madvise: before the fault queue stopped blocking the
// monitor's reads, all of them ended up waiting in handle_userfault (from about 40 threads; 96
// hung every time here).
TEST(MappingStress, NinetySixThreadsFaultingWhileOthersDropPages) {
  run_variant({{"--threads", "96", "--steps", "300", "--ops", "advise"}, {1, 2}});
}

TEST(MappingStress, SixtyFourThreadsEveryOperation) {
  run_variant({{"--threads", "64", "--steps", "200", "--ops", "map,prot,advise,remap,io,fork,signal,smallstacks,lazystacks"},
               {1}});
}

// Since 6.17 a move may span several VMAs (split by mprotect); without the shim it succeeds.
TEST(MappingStress, MremapMovesRangesSpanningSeveralVmas) {
  run_variant({{"--threads", "4", "--steps", "300", "--ops", "multivma,remap,prot"}, {1, 2}});
}

// The program closes every descriptor above 2 at startup (the shim's userfaultfd among them), then
// touches memory mapped before the close while its own files and pipes take the freed numbers.
TEST(MappingStress, CloseRangeAtStartupThenOldMemoryFilesAndPipes) {
  run_variant({{"--threads", "8", "--steps", "200", "--ops", "io,advise", "--close-range=old-memory"},
               {1, 2, 3, 4, 5, 6},
               "4K",
               false});
}

// The same, but only memory mapped after the close is used: the process must still exit.
TEST(MappingStress, CloseRangeAtStartupThenNewMemoryAndExit) {
  run_variant({{"--threads", "1", "--steps", "100", "--ops", "touch,io", "--close-range=new-memory"}, {1, 2}, "4K", false});
}

// Every thread unmaps all it mapped before the process exits (the main thread unmaps the lazily
// paged thread stacks last), so a recording taken at exit must hold no region at all.
TEST(MappingStress, RecordingAtExitHoldsOnlyRegionsStillMapped) {
  TempDir dir;
  for (int seed = 1; seed <= 30; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string file = dir.file("seed" + std::to_string(seed) + ".snap");
    std::vector<std::string> argv = {target_path("mapping_stress"), "--seed", std::to_string(seed), "--threads", "8",
                                     "--steps", "300", "--ops", "remap,lazystacks", "--watchdog",
                                     std::to_string(kWatchdogSeconds)};
    std::string command;
    for (const auto& a : argv) command += a + " ";
    ProcessResult recorded = record(file, {}, argv);
    ASSERT_EQ(recorded.exit_code, 0) << "uffdlazy record -o FILE -- " << command << "\n" << recorded.out << recorded.err;
    RecordLine line = record_line(recorded.err, file);
    ASSERT_TRUE(line.found) << recorded.err;
    // The program's own regions, that is (glibc's malloc keeps its arenas until the end).
    snap::SnapshotReader reader;
    ASSERT_TRUE(reader.open(file.c_str()).ok());
    int programs = 0;
    for (uint64_t i = 0; i < reader.region_count(); i++) {
      snap::ModuleView m;
      if (reader.region_module(i, &m) && std::string(m.path).ends_with("/mapping_stress")) programs++;
    }
    ASSERT_EQ(programs, 0) << "uffdlazy record -o FILE -- " << command << "; uffdlazy inspect FILE\n" << recorded.err;
  }
}

// Children made without the fork() wrapper (_Fork, clone) run no pthread_atfork handlers: before
// the shim filled owed pages for those too, pages the snapshot still owed read as zeros in them.
TEST(MappingStress, RestoredProcessChildrenSeeTheSnapshotsPages) {
  for (int seed : {3, 4}) {
    run_recorded_then_restored({"--threads", "4", "--steps", "300", "--ops", "fork,advise"}, seed);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace uffdlazy::test
