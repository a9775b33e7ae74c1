// The exit summary goes to the program's stderr and nowhere else, even when the program closes and
// reuses file descriptors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {
namespace {

TEST(ExitSummary, NeverLandsInAFileThatReusedTheShimsDescriptor) {
  const std::string data = "/tmp/uffdlazy-test-" + std::to_string(getpid()) + "-data.txt";
  // Close everything above stderr, then open enough files that one of them gets the number the
  // shim's private copy of stderr had.
  const std::string script =
      "import os\n"
      "os.closerange(3, 200)\n"
      "[os.open('/dev/null', 0) for _ in range(97)]\n"
      "fd = os.open('" + data + "', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n"
      "os.write(fd, b'payload\\n')\n";
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_STATS", "1"}};
  ProcessResult r = run_process({"/usr/bin/python3", "-I", "-c", script}, opt);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(data);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "payload\n");
  EXPECT_FALSE(summary_line(r.err).empty()) << "the summary still reaches stderr: " << r.err;
  unlink(data.c_str());
}

}  // namespace
}  // namespace uffdlazy::test
