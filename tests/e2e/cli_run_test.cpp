// `uffdlazy run [options] -- program args`, end to end: the options reach the shim, the program's
// output and exit status come through untouched, and usage errors are reported with status 2
// (127 for a program that cannot be found), naming the problem.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>

#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"
#include "uffdlazy/version.h"

namespace uffdlazy::test {
namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

size_t count_summaries(const std::string& err) {
  size_t n = 0;
  while (!summary_line(err, n).empty()) n++;
  return n;
}

ProcessResult cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {cli_path(), "run"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions opt;
  opt.timeout_seconds = 60;
  return run_process(argv, opt);
}

ProcessResult plain_touch_300() {
  ProcessResult r = run_process({target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("touch pages=300 checksum=", 0), 0u) << r.out;
  return r;
}

TEST(CliRun, StatsRunsTheProgramUnderTheShim) {
  ProcessResult plain = plain_touch_300();
  ProcessResult r = cli({"--stats", "--", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  // One line: the program's. The CLI itself does not run under the shim.
  ASSERT_EQ(count_summaries(r.err), 1u) << r.err;
  std::string s = summary_line(r.err);
  EXPECT_GE(summary_field(s, "faults"), 300) << s;
  EXPECT_GE(summary_field(s, "regions"), 1) << s;
  EXPECT_FALSE(contains(s, "inactive")) << s;
}

TEST(CliRun, WithoutStatsPrintsNothingOfItsOwn) {
  ProcessResult plain = plain_touch_300();
  ProcessResult r = cli({"--", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  EXPECT_EQ(r.err, "");
}

TEST(CliRun, ProgramWithoutDoubleDashIsAccepted) {
  ProcessResult plain = plain_touch_300();
  ProcessResult r = cli({"--stats", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  EXPECT_GE(summary_field(summary_line(r.err), "faults"), 300) << r.err;
}

TEST(CliRun, MinSizeAboveTheMappingLeavesItAlone) {
  ProcessResult plain = plain_touch_300();
  // 300 pages are 1.2 MB: below 2M, so not registered and never faulted through the shim.
  ProcessResult r = cli({"--min-size", "2M", "--stats", "--", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  std::string s = summary_line(r.err);
  ASSERT_FALSE(s.empty()) << r.err;
  EXPECT_EQ(summary_field(s, "regions"), 0) << s;
  EXPECT_EQ(summary_field(s, "faults"), 0) << s;
  EXPECT_FALSE(contains(s, "inactive")) << "the shim is active, it just has nothing to page: " << s;
  // And 1M takes it again: the option, not something else, made the difference.
  ProcessResult r1 = cli({"--min-size", "1M", "--stats", "--", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r1.out, plain.out);
  EXPECT_GE(summary_field(summary_line(r1.err), "faults"), 300) << r1.err;
}

TEST(CliRun, StrictExits3WhereUserfaultfdIsDenied) {
  ProcessResult r = run_process({target_path("no_userfaultfd"), cli_path(), "run", "--strict", "--",
                                 target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "uffdlazy: userfaultfd is not available")) << r.err;
  EXPECT_TRUE(contains(r.err, "UFFDLAZY_STRICT=1, so exiting")) << r.err;
  // Without --strict the same run fails open.
  ProcessResult open = run_process({target_path("no_userfaultfd"), cli_path(), "run", "--",
                                    target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(open.exit_code, 0) << open.err;
  EXPECT_EQ(open.out, plain_touch_300().out);
  EXPECT_TRUE(contains(open.err, "running without lazy paging")) << open.err;
}

TEST(CliRun, BadMinSizeIsReportedByTheShimWithStatus2) {
  ProcessResult r = cli({"--min-size", "lots", "--", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "UFFDLAZY_MIN_SIZE='lots' is not valid")) << r.err;
}

TEST(CliRun, NoProgramExits2) {
  ProcessResult r = cli({});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "no program given")) << r.err;
  EXPECT_TRUE(contains(r.err, "usage: uffdlazy run")) << r.err;
  ProcessResult dashes = cli({"--stats", "--"});
  EXPECT_EQ(dashes.exit_code, 2) << dashes.err;
  EXPECT_TRUE(contains(dashes.err, "no program given")) << dashes.err;
}

TEST(CliRun, OptionWithoutItsValueExits2) {
  ProcessResult r = cli({"--min-size"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "--min-size needs a value")) << r.err;
}

TEST(CliRun, UnknownOptionExits2NamingIt) {
  ProcessResult r = cli({"--fast", "--", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "") << "the program must not run";
  EXPECT_TRUE(contains(r.err, "unknown option '--fast'")) << r.err;
}

TEST(CliRun, MissingProgramExits127WithAMessage) {
  ProcessResult r = cli({"--", "/nonexistent/uffdlazy-no-such-program", "arg"});
  EXPECT_EQ(r.exit_code, 127) << r.err;
  EXPECT_TRUE(contains(r.err, "cannot run '/nonexistent/uffdlazy-no-such-program'")) << r.err;
  EXPECT_TRUE(contains(r.err, "No such file or directory")) << r.err;
  // Looked up in PATH, too.
  ProcessResult bare = cli({"--", "uffdlazy-no-such-program"});
  EXPECT_EQ(bare.exit_code, 127) << bare.err;
  EXPECT_TRUE(contains(bare.err, "cannot run 'uffdlazy-no-such-program'")) << bare.err;
}

TEST(CliRun, ProgramExitStatusAndSignalPassThrough) {
  ProcessResult seven = cli({"--", "/bin/sh", "-c", "exit 7"});
  EXPECT_EQ(seven.exit_code, 7) << seven.err;
  ProcessResult zero = cli({"--stats", "--", "/bin/sh", "-c", "echo hello; exit 0"});
  EXPECT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_EQ(zero.out, "hello\n");
  // The program replaces the CLI, so a signal that kills it is the run's own end.
  ProcessResult killed = cli({"--", "/bin/sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(killed.exit_code, -1) << killed.err;
  EXPECT_EQ(killed.signal, SIGTERM) << killed.err;
}

TEST(CliRun, ProgramArgumentsArePassedVerbatim) {
  ProcessResult r = cli({"--", "/usr/bin/printf", "[%s]", "--stats", "a b", "", "--"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[--stats][a b][][--]");
  EXPECT_EQ(summary_line(r.err), "") << "--stats after the program belongs to the program";
}

}  // namespace
}  // namespace uffdlazy::test

namespace uffdlazy::test {
namespace {

// A version manager's wrapper (pyenv's shims, say): a shell script that runs small helpers to
// find the real program, then execs it. Every one of them loads the shim.
std::string wrapper_script(const std::string& dir) {
  const std::string path = dir + "/wrapper.sh";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fprintf(f, "#!/bin/sh\nversion=$(cat /dev/null)\nhere=$(dirname \"$0\")\n/bin/true\nexec \"$@\"\n");
  std::fclose(f);
  chmod(path.c_str(), 0755);
  return path;
}

TEST(CliRunWrappers, StatsPrintsOnlyTheProgramsLineMarked) {
  TempDir tmp;
  const std::string wrapper = wrapper_script(tmp.path());
  ProcessResult plain = plain_touch_300();
  ProcessResult r = cli({"--stats", "--", wrapper, target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  // The helpers (cat, dirname, true) print nothing; the program, which the script exec'd in the
  // process uffdlazy started, prints its line, marked.
  ASSERT_EQ(count_summaries(r.err), 1u) << r.err;
  const std::string s = summary_line(r.err);
  EXPECT_TRUE(contains(s, " comm=memory_rules program ")) << s;
  EXPECT_GE(summary_field(s, "faults"), 300) << s;
}

TEST(CliRunWrappers, StatsAllPrintsEveryProcessWithOnlyTheProgramMarked) {
  TempDir tmp;
  const std::string wrapper = wrapper_script(tmp.path());
  std::vector<std::string> argv = {cli_path(), "run", "--", wrapper, target_path("memory_rules"), "touch", "300"};
  RunOptions opt;
  opt.env["UFFDLAZY_STATS"] = "all";
  ProcessResult r = run_process(argv, opt);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // cat, dirname and true (each forked by the script), then the program.
  ASSERT_EQ(count_summaries(r.err), 4u) << r.err;
  size_t marked = 0;
  for (size_t i = 0; i < 4; i++) {
    const std::string s = summary_line(r.err, i);
    if (contains(s, " program ")) {
      marked++;
      EXPECT_TRUE(contains(s, " comm=memory_rules ")) << s;
    } else {
      EXPECT_TRUE(contains(s, " comm=cat ") || contains(s, " comm=dirname ") || contains(s, " comm=true ")) << s;
    }
  }
  EXPECT_EQ(marked, 1u) << r.err;
}

TEST(CliRunWrappers, WithoutTheCommandTheFirstProcessIsTheProgram) {
  TempDir tmp;
  const std::string wrapper = wrapper_script(tmp.path());
  RunOptions opt;
  opt.with_shim = true;
  opt.env["UFFDLAZY_STATS"] = "1";
  ProcessResult r = run_process({wrapper, target_path("memory_rules"), "touch", "300"}, opt);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(count_summaries(r.err), 1u) << r.err;
  EXPECT_TRUE(contains(summary_line(r.err), " comm=memory_rules program ")) << r.err;
}

TEST(CliRunWrappers, SummaryCarriesTheVersion) {
  ProcessResult r = cli({"--stats", "--", target_path("memory_rules"), "touch", "300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string version = std::string(" version=") + UFFDLAZY_VERSION;
  if (UFFDLAZY_GIT_COMMIT[0]) version += std::string("+") + UFFDLAZY_GIT_COMMIT;
  EXPECT_TRUE(contains(summary_line(r.err) + "\n", version + "\n")) << r.err;
}

}  // namespace
}  // namespace uffdlazy::test
