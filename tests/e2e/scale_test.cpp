// Programs whose shim costs used to grow without bound (many mappings, a fork after each of many
// mappings, a thousand threads at once) run to completion under the shim with the output of a
// run without it. How fast is for scripts/bench_scale.sh: these tests assert only behaviour.
#include <gtest/gtest.h>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {
namespace {

using Runs = PlainAndShim;

Runs run_both(const std::vector<std::string>& args) {
  Runs r = run_target_both_ways("scale_target", args);
  EXPECT_EQ(r.plain.exit_code, 0) << r.plain.out << r.plain.err;
  EXPECT_EQ(r.shim.exit_code, 0) << r.shim.out << r.shim.err;
  EXPECT_EQ(r.shim.out, r.plain.out);
  EXPECT_FALSE(r.summary.empty()) << r.shim.err;
  return r;
}

// 65000 mappings fit the region table (65536): every one is registered, and a quarter of them
// unmapped again leaves the rest with their pages.
TEST(Scale, SixtyFiveThousandMappingsAreEachRegistered) {
  Runs r = run_both({"mappings", "65000", "64"});
  EXPECT_EQ(r.shim.out, "65000 mappings, 508 unmapped, 0 pages wrong\n");
  EXPECT_GE(summary_field(r.summary, "regions"), 65000) << r.summary;
  EXPECT_GE(summary_field(r.summary, "unmap"), 508) << r.summary;
}

// Each child of a process holding hundreds of registered mappings reads its parent's pages.
TEST(Scale, ForkAfterEachOfManyMappingsGivesEveryChildItsParentsPages) {
  Runs r = run_both({"mmap-fork", "40", "64"});
  EXPECT_EQ(r.shim.out, "40 mappings of 64 MiB, 40 forks, 40 children saw their parent's pages\n");
  EXPECT_EQ(summary_field(r.summary, "fork"), 40) << r.summary;
}

// 1024 threads alive at once, each on a registered stack it writes, all meet at one barrier.
TEST(Scale, ThousandThreadsAtOnceAllMeetAndJoin) {
  Runs r = run_both({"threads", "1024"});
  EXPECT_EQ(r.shim.out, "1024 threads met at the barrier, 1024 joined with their own result, stack checks 4096 of 4096\n");
  EXPECT_GE(summary_field(r.summary, "regions"), 1024) << r.summary;
}

// Threads that exit while others start (each exit madvises its stack away, an event the monitor
// must read): 256 chains of 8, as CRIU's thread bomb, all run.
TEST(Scale, ChainsOfThreadsStartingAsOthersExitAllRun) {
  Runs r = run_both({"thread-chains", "256", "8"});
  EXPECT_EQ(r.shim.out, "256 chains of 8 threads, 2048 threads ran\n");
  EXPECT_GT(summary_field(r.summary, "remove"), 0) << r.summary;
}

}  // namespace
}  // namespace uffdlazy::test
