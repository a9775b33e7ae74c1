// Every rule of lazy paging, end to end: the target checks each page itself and prints an account
// that must match a run without the shim byte for byte; the shim's summary proves it served the
// faults and saw the events.
#include <gtest/gtest.h>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {
namespace {

using Runs = PlainAndShim;

Runs run_both(const std::vector<std::string>& args) { return run_target_both_ways("memory_rules", args); }

void expect_same(const Runs& r) {
  EXPECT_EQ(r.plain.exit_code, 0) << r.plain.out << r.plain.err;
  EXPECT_EQ(r.shim.exit_code, 0) << r.shim.out << r.shim.err;
  EXPECT_EQ(r.shim.out, r.plain.out);
  ASSERT_FALSE(r.summary.empty()) << r.shim.err;
}

TEST(MemoryRules, FreshPagesAreServedAsZerosAndKeepWrites) {
  Runs r = run_both({"touch", "512"});
  expect_same(r);
  // 512 pages, each first touched once: every one is a fault the monitor answered.
  EXPECT_GE(summary_field(r.summary, "faults"), 512) << r.summary;
  EXPECT_GE(summary_field(r.summary, "regions"), 1) << r.summary;
}

TEST(MemoryRules, MadviseDontneedDropsPagesToZero) {
  Runs r = run_both({"dontneed"});
  expect_same(r);
  EXPECT_GE(summary_field(r.summary, "remove"), 1) << r.summary;
}

TEST(MemoryRules, MadviseFreeThenReclaimReadsZero) {
  Runs r = run_both({"free"});
  expect_same(r);
  EXPECT_GE(summary_field(r.summary, "remove"), 1) << r.summary;
}

TEST(MemoryRules, MunmapAndMapFixedResetTheRange) {
  Runs r = run_both({"unmap"});
  expect_same(r);
  EXPECT_GE(summary_field(r.summary, "unmap"), 2) << r.summary;
}

TEST(MemoryRules, MremapMoveGrowShrinkKeepEveryPage) {
  Runs r = run_both({"remap"});
  expect_same(r);
  EXPECT_GE(summary_field(r.summary, "remap"), 2) << r.summary;  // move + DONTUNMAP
}

TEST(MemoryRules, ThreadsFaultingOnePageAllResume) {
  Runs r = run_both({"threads", "8"});
  expect_same(r);
  EXPECT_GE(summary_field(r.summary, "faults"), 256) << r.summary;
}

TEST(MemoryRules, KernelModeFaultsFromSyscallsWork) {
  Runs r = run_both({"syscalls"});
  expect_same(r);
  EXPECT_GE(summary_field(r.summary, "faults"), 2) << r.summary;
}

TEST(MemoryRules, ForkedChildSeesExactlyTheParentsMemory) {
  Runs r = run_both({"fork"});
  expect_same(r);
  EXPECT_EQ(summary_field(r.summary, "fork"), 1) << r.shim.err;
}

TEST(MemoryRules, ExecedChildStartsClean) {
  Runs r = run_both({"exec"});
  expect_same(r);
}

// Since Linux 6.17 a move may span several mappings; the kernel refuses it (after a partial
// move) when one of them is registered. The shim moves such a range one mapping at a time.
TEST(MemoryRules, MoveAcrossSeveralMappingsGivesWhatTheKernelGivesWithoutTheShim) {
  Runs r = run_both({"move_across_mappings"});
  expect_same(r);
  EXPECT_GE(summary_field(r.summary, "remap"), 3) << r.summary;  // one per mapping
}

// More mappings than the shim gathers at once (300, alternating protection, a gap in the middle):
// the same pages, the same result and the same old range as without the shim.
TEST(MemoryRules, MoveAcrossHundredsOfMappingsGivesWhatTheKernelGivesWithoutTheShim) {
  Runs r = run_both({"move_many_mappings", "300"});
  expect_same(r);
  EXPECT_NE(r.plain.out.find("move many mappings (300)"), std::string::npos) << r.plain.out;
  if (r.plain.out.find("ok") != std::string::npos) {
    EXPECT_GE(summary_field(r.summary, "remap"), 299) << r.summary;  // one per mapping
  }
}

// Without /proc the shim cannot read the mappings; it learns them otherwise and moves exactly
// what the kernel would move without it.
TEST(MemoryRules, MoveAcrossMappingsWithoutProcGivesWhatTheKernelGivesWithoutTheShim) {
  Runs few = run_both({"move_across_mappings", "noproc"});
  expect_same(few);
  Runs many = run_both({"move_many_mappings", "300", "noproc"});
  expect_same(many);
  EXPECT_NE(many.plain.out.find("move many mappings (300)"), std::string::npos) << many.plain.out;
  if (many.plain.out.find("ok") != std::string::npos) {
    EXPECT_GE(summary_field(few.summary, "remap"), 3) << few.summary;     // one per mapping
    EXPECT_GE(summary_field(many.summary, "remap"), 299) << many.summary;
  }
}

// The tail of a grow that moves is part of the region: with fault-around 16, 96 fresh tail pages
// cost 6 round trips, not 96 (they would if the table did not know the tail).
TEST(MemoryRules, GrowThatMovesKeepsTheTailInItsRegion) {
  Runs r = run_both({"grow_and_move"});
  expect_same(r);
  EXPECT_LE(summary_field(r.summary, "requests"), 2 * 2 + 2 * 6 + 4) << r.summary;
}

// The program closes every descriptor past stderr (the shim's included) and reuses the numbers:
// its files and pipes hold only its own bytes, and its memory stays right.
TEST(MemoryRules, ClosingEveryDescriptorNeverExposesTheProgramsFilesToTheShim) {
  Runs r = run_both({"close_every_descriptor"});
  expect_same(r);
  // The monitor keeps serving on a descriptor table of its own.
  EXPECT_EQ(r.shim.err.find("cannot continue"), std::string::npos) << r.shim.err;
  // Mappings made after the shim's descriptor was closed are left to the kernel, and said so.
  EXPECT_GE(summary_field(r.summary, "unregistered"), 1) << r.summary;
  EXPECT_GE(summary_field(r.summary, "remove"), 1) << r.summary;
}

// Memory mapped through syscall(2) instead of mmap(2) is seen too: with fault-around 1 each of
// the 256 first touches (and of the 256 tail pages after the grow) is a fault the monitor served.
TEST(MemoryRules, MemoryMappedThroughSyscallIsPagedToo) {
  std::vector<std::string> argv = {target_path("memory_rules"), "raw_syscalls"};
  ProcessResult plain = run_process(argv);
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_STATS", "1"}, {"UFFDLAZY_STRICT", "1"}, {"UFFDLAZY_FAULT_AROUND", "1"},
             {"UFFDLAZY_MIN_SIZE", "512K"}};
  ProcessResult shim = run_process(argv, opt);
  EXPECT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_EQ(shim.exit_code, 0) << shim.out << shim.err;
  EXPECT_EQ(shim.out, plain.out);
  const std::string line = summary_line(shim.err);
  EXPECT_GE(summary_field(line, "faults"), 512) << line;
  EXPECT_GE(summary_field(line, "remap"), 1) << line;
}

TEST(MemoryRules, ThreadOnASmallStackMapsMemoryAsWithoutTheShim) {
  Runs r = run_both({"small_stack"});
  expect_same(r);
  EXPECT_EQ(r.shim.signal, 0);
}

// With a recording armed the shim also takes its call-site lock inside mmap: a handler that maps
// memory on the same thread must never deadlock on it.
TEST(MemoryRules, SignalHandlerThatMapsMemoryNeverDeadlocks) {
  std::vector<std::string> argv = {target_path("memory_rules"), "handler_maps_memory"};
  ProcessResult plain = run_process(argv);
  RunOptions opt;
  opt.with_shim = true;
  opt.timeout_seconds = 60;
  opt.env = {{"UFFDLAZY_STATS", "1"}, {"UFFDLAZY_STRICT", "1"}, {"UFFDLAZY_RECORD", "/dev/null/never"},
             {"UFFDLAZY_RECORD_AT", "signal=USR2"}};
  ProcessResult shim = run_process(argv, opt);
  EXPECT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_EQ(shim.exit_code, 0) << shim.out << shim.err;
  EXPECT_EQ(shim.out, plain.out);
}

}  // namespace
}  // namespace uffdlazy::test

namespace uffdlazy::test {
namespace {

// stress_mix with and without the shim, every block registered however small (so every operation
// meets the shim): the same output, no wrong page, and more than the given counts in the summary
// (remaps only when `remaps` is not negative).
void stress_mix_as_without_the_shim(const std::string& threads, const std::string& steps, long faults, long events,
                                    long remaps) {
  std::vector<std::string> argv = {target_path("stress_mix"), threads, steps};
  ProcessResult plain = run_process(argv);
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_STATS", "1"}, {"UFFDLAZY_STRICT", "1"}, {"UFFDLAZY_MIN_SIZE", "4K"}};
  ProcessResult shim = run_process(argv, opt);
  ASSERT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  ASSERT_EQ(shim.exit_code, 0) << shim.out << shim.err;
  EXPECT_EQ(shim.out, plain.out);
  EXPECT_NE(shim.out.find("mismatches=0\n"), std::string::npos);
  std::string line = summary_line(shim.err);
  EXPECT_GT(summary_field(line, "faults"), faults) << line;
  EXPECT_GT(summary_field(line, "remove"), events) << line;
  EXPECT_GT(summary_field(line, "unmap"), events) << line;
  if (remaps >= 0) {
    EXPECT_GT(summary_field(line, "remap"), remaps) << line;
  }
}

TEST(MemoryStress, ThreadsFaultingAdvisingRemappingAndUnmappingTogetherSeeNoWrongPage) {
  stress_mix_as_without_the_shim("4", "3000", 10000, 100, 100);
}

// A thousand threads faulting while others drop, move and unmap: more blocked faults than the
// monitor reads in a batch, and events queued behind them. Before the queue stopped blocking
// reads, 32 threads were enough to hang the process.
TEST(MemoryStress, AThousandThreadsFaultingThroughEventsNeverHang) {
  stress_mix_as_without_the_shim("1000", "30", 100000, 1000, -1);
}

}  // namespace
}  // namespace uffdlazy::test
