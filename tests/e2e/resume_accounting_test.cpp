// What checkpoint and resume say about a process counts the program, not the shim: the threads of
// the checkpoint line and of inspect are the program's (the shim's monitor and checkpoint thread
// are named apart), and the resumed process's summary counts the regions it is served from.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/resume_test_util.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

TEST(ResumeAccounting, ASingleThreadedProgramIsCheckpointedAsOneThread) {
  TempDir tmp;
  const std::string image = tmp.file("lone.img");
  RunOptions waits = with_input("", true);  // the read blocks: the checkpoint finds it there
  ProcessResult checkpoint = run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("lone_thread")}, waits);
  ASSERT_EQ(checkpoint.exit_code, 0) << checkpoint.err;
  EXPECT_NE(checkpoint.err.find(" written: 1 thread, "), std::string::npos) << checkpoint.err;
  ProcessResult text = run_process({cli_path(), "inspect", image});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("\nthreads     1 of the program, 2 of the shim\n"), std::string::npos) << text.out;
  ProcessResult resumed = run_process({cli_path(), "resume", image}, with_input("y", false));
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(resumed.out, "lone_thread: read 1 byte 'y'\n") << resumed.err;
}

TEST(ResumeAccounting, AResumedProcessCountsTheRegionsItIsServedFrom) {
  ResumeCase c("regions");
  // Checkpointed while it waits for input at step 1 (raise() only asks for the checkpoint: without
  // the wait, a loaded host let the program finish first, with no image).
  c.args = {"--mb", "64", "--steps", "3", "--pause-at", "1"};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.input = "y";
  c.run_and_compare();  // resumed with --stats
  // The 64 MiB array at least is served lazily, beside the pages brought in from it.
  EXPECT_GT(c.resumed_field("prefetched") + c.resumed_field("faults"), 0) << c.resumed.err;
  EXPECT_GE(c.resumed_field("regions"), 1) << c.resumed.err;
  EXPECT_NE(c.resumed.err.find(" program "), std::string::npos) << c.resumed.err;
}

}  // namespace
}  // namespace uffdlazy::test
