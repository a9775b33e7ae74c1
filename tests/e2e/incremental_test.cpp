// Incremental process images (`checkpoint --incremental`): a later image stores only the pages
// the program changed since the image it builds on, and refers to that image for the rest. A
// chain must resume to exactly what an uninterrupted run prints and writes, whatever the program
// did to its memory in between (writes, MADV_DONTNEED, munmap, mremap, new mappings), compacted
// or not; a chain with a missing or replaced image is refused.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/resume_test_util.h"

namespace uffdlazy::test {
namespace {

long file_size(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? long(st.st_size) : -1;
}

// Writes uffdlazy prints about an image: "... N pages stored (... K of them unchanged, left in P)".
long unchanged_pages(const std::string& err) {
  const size_t at = err.find(" of them unchanged");
  if (at == std::string::npos) return -1;
  size_t b = at;
  while (b > 0 && err[b - 1] >= '0' && err[b - 1] <= '9') b--;
  return std::stol(err.substr(b, at - b));
}

// The program is checkpointed (stop) at step 2, resumed with the next checkpoint going to a
// second image, changes its memory in every way at step 4 and drops pages at step 5, is
// checkpointed again at step 6 (an incremental image), and the chain is resumed to the end.
class IncrementalChain : public ::testing::Test {
 protected:
  void SetUp() override {
    c = std::make_unique<ResumeCase>("chain");
    c->args = {"--mb", "64", "--steps", "10", "--threads", "2", "--pause-at", "2", "--pause-at", "6",
               "--churn-at", "4", "--drop-at", "5", "--sum-all"};
    c->checkpoint_extra = {"--signal-at", "2", "--signal-at", "6"};
    c->input = "yz";
    second = c->dir + "/second.img";
  }

  void take_first() {
    c->reference();
    ASSERT_EQ(c->expected.exit_code, 0) << c->expected.err;
    std::vector<std::string> argv = {cli_path(), "checkpoint", "--incremental", "-o", c->image, "--"};
    std::vector<std::string> t = c->target("log", "data");
    argv.insert(argv.end(), t.begin(), t.end());
    argv.insert(argv.end(), c->checkpoint_extra.begin(), c->checkpoint_extra.end());
    c->checkpoint = run_process(argv, with_input("", true));
    ASSERT_EQ(c->checkpoint.exit_code, 0) << c->checkpoint.err;
    // The first image of a process stands alone.
    ASSERT_EQ(unchanged_pages(c->checkpoint.err), -1) << c->checkpoint.err;
  }

  // Generation 2: from the first image to the second checkpoint, with the given extra options.
  void take_second(const std::vector<std::string>& options) {
    std::vector<std::string> argv = {cli_path(), "resume", c->image, "--checkpoint-to", second};
    argv.insert(argv.end(), options.begin(), options.end());
    g2 = run_process(argv, with_input("y", true));
    ASSERT_EQ(g2.exit_code, 0) << g2.err;
    ASSERT_NE(g2.err.find("checkpoint " + second + " written"), std::string::npos) << g2.err;
  }

  ProcessResult finish(const std::string& image) {
    return run_process({cli_path(), "resume", image, "--stats"}, with_input("z", false));
  }

  std::unique_ptr<ResumeCase> c;
  std::string second;
  ProcessResult g2;
};

TEST_F(IncrementalChain, ResumesToWhatAnUninterruptedRunPrintsAndWrites) {
  take_first();
  take_second({});
  // Most of the 64 MiB array was not written between steps 2 and 6: left in the first image.
  const long unchanged = unchanged_pages(g2.err);
  EXPECT_GT(unchanged, 10000) << g2.err;
  EXPECT_LT(file_size(second) * 4, file_size(c->image)) << g2.err;
  ProcessResult g3 = finish(second);
  EXPECT_EQ(g3.exit_code, 0) << g3.err;
  EXPECT_EQ(c->checkpoint.out + g2.out + g3.out, c->expected.out) << g3.err;
  EXPECT_NE(c->expected.out.find("churn "), std::string::npos) << c->expected.out;
  EXPECT_NE(c->expected.out.find("dropped 256 pages, 256 read zeros"), std::string::npos) << c->expected.out;
  EXPECT_EQ(read_file(c->dir + "/log"), read_file(c->dir + "/ref-log"));
  EXPECT_EQ(read_file(c->dir + "/data"), read_file(c->dir + "/ref-data"));
  ProcessResult v = run_process({cli_path(), "verify", second});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  ProcessResult inspect = run_process({cli_path(), "inspect", second});
  EXPECT_NE(inspect.out.find("parent      " + c->image), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("chain       ok"), std::string::npos) << inspect.out;
}

TEST_F(IncrementalChain, PagesNeverServedBeforeTheSecondCheckpointAreLeftInTheFirst) {
  // Without the background fill, most pages are still owed at step 6: unchanged by definition.
  take_first();
  take_second({"--prefetch", "none"});
  EXPECT_GT(unchanged_pages(g2.err), 10000) << g2.err;
  ProcessResult g3 = finish(second);
  EXPECT_EQ(g3.exit_code, 0) << g3.err;
  EXPECT_EQ(c->checkpoint.out + g2.out + g3.out, c->expected.out) << g3.err;
  EXPECT_EQ(read_file(c->dir + "/data"), read_file(c->dir + "/ref-data"));
}

TEST_F(IncrementalChain, CompactedImageResumesTheSameWithoutItsParent) {
  take_first();
  take_second({});
  const std::string whole = c->dir + "/whole.img";
  ProcessResult compact = run_process({cli_path(), "compact", second, "-o", whole});
  ASSERT_EQ(compact.exit_code, 0) << compact.out << compact.err;
  ProcessResult inspect = run_process({cli_path(), "inspect", "--json", whole});
  EXPECT_NE(inspect.out.find("\"ancestors\":[]"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("\"parent_pages\":0,"), std::string::npos) << inspect.out;
  ASSERT_EQ(rename(c->image.c_str(), (c->dir + "/away.img").c_str()), 0);
  ProcessResult g3 = finish(whole);
  EXPECT_EQ(g3.exit_code, 0) << g3.err;
  EXPECT_EQ(c->checkpoint.out + g2.out + g3.out, c->expected.out) << g3.err;
  EXPECT_EQ(read_file(c->dir + "/data"), read_file(c->dir + "/ref-data"));
}

TEST_F(IncrementalChain, MissingOrReplacedParentRefused) {
  take_first();
  take_second({});
  const std::string away = c->dir + "/away.img";
  ASSERT_EQ(rename(c->image.c_str(), away.c_str()), 0);
  ProcessResult missing = finish(second);
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_EQ(missing.out, "");
  EXPECT_NE(missing.err.find("its parent image " + c->image + " cannot be opened"), std::string::npos) << missing.err;
  ProcessResult verify = run_process({cli_path(), "verify", second});
  EXPECT_EQ(verify.exit_code, 2) << verify.out;
  // Another image under the parent's name (the second one itself, copied there).
  ASSERT_EQ(run_process({"/bin/cp", second, c->image}).exit_code, 0);
  ProcessResult replaced = finish(second);
  EXPECT_EQ(replaced.exit_code, 2) << replaced.err;
  EXPECT_NE(replaced.err.find("is not the file it was written against"), std::string::npos) << replaced.err;
  ProcessResult compact = run_process({cli_path(), "compact", second, "-o", c->dir + "/x.img"});
  EXPECT_EQ(compact.exit_code, 2) << compact.err;
  EXPECT_EQ(file_size(c->dir + "/x.img"), -1);
}

}  // namespace
}  // namespace uffdlazy::test
