// Fail-open, strict mode and configuration errors, end to end.
//
// Where userfaultfd cannot be had (a seccomp profile that denies it, or an unprivileged user on a
// machine with vm.unprivileged_userfaultfd=0 and a root-only /dev/userfaultfd), the shim must say
// so once, on one line naming why, and let the program run exactly as without it; with
// UFFDLAZY_STRICT=1 it must instead exit with status 3 before the program does anything. A bad
// UFFDLAZY_* setting is a hard error (status 2) naming the variable.
//
// The launchers tests/targets/no_userfaultfd and tests/targets/as_nobody take userfaultfd away;
// the shim is preloaded only into the program they start (through env(1)), never into the
// launcher itself, so every line on stderr comes from the program's own shim.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {
namespace {

constexpr const char kFailOpenPrefix[] = "uffdlazy: userfaultfd is not available";
constexpr const char kUserModeWarning[] = "uffdlazy: WARNING: only a user-mode-only userfaultfd is available";

const std::vector<std::string> kTouch = {"touch", "256"};

std::vector<std::string> lines_starting_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> found;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (text.compare(pos, prefix.size(), prefix) == 0) found.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return found;
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// A directory every user can read and search, holding copies of the shim and the target, so a
// process running as nobody can load and execute them wherever the build tree lives (it may be
// under a 0700 home directory). Removed afterwards.
class WorldReadableCopies {
 public:
  WorldReadableCopies() {
    std::string tmpl = "/tmp/uffdlazy-nobody-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    shim_ = copy(shim_path(), "libuffdlazy.so");
    memory_rules_ = copy(target_path("memory_rules"), "memory_rules");
  }
  ~WorldReadableCopies() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& shim() const { return shim_; }
  const std::string& memory_rules() const { return memory_rules_; }

 private:
  std::string copy(const std::string& from, const std::string& name) {
    std::string to = dir_ + "/" + name;
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
    chmod(to.c_str(), 0755);
    return to;
  }
  std::string dir_, shim_, memory_rules_;
};

// `launcher env LD_PRELOAD=shim UFFDLAZY_...=... program args`: the launcher runs without the
// shim, the program with it.
ProcessResult run_launched(const std::string& launcher, const std::string& shim, const std::string& program,
                           const std::vector<std::string>& args, const std::vector<std::string>& settings) {
  std::vector<std::string> argv = {target_path(launcher), "/usr/bin/env", "LD_PRELOAD=" + shim};
  argv.insert(argv.end(), settings.begin(), settings.end());
  argv.push_back(program);
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions opt;
  opt.timeout_seconds = 60;
  return run_process(argv, opt);
}

ProcessResult run_plain_touch() {
  std::vector<std::string> argv = {target_path("memory_rules")};
  argv.insert(argv.end(), kTouch.begin(), kTouch.end());
  ProcessResult r = run_process(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("touch pages=256 checksum=", 0), 0u) << "memory_rules' own account changed:\n" << r.out;
  EXPECT_FALSE(contains(r.out, "FAIL")) << r.out;
  return r;
}

// The fail-open line: exactly one, naming each way that was tried and why it failed.
std::string expect_one_fail_open_line(const ProcessResult& r) {
  auto found = lines_starting_with(r.err, kFailOpenPrefix);
  EXPECT_EQ(found.size(), 1u) << "want exactly one '" << kFailOpenPrefix << "' line; stderr:\n" << r.err;
  return found.empty() ? "" : found[0];
}

// The account of a shim that failed open: present, inactive, and with nothing done.
void expect_inactive_summary(const ProcessResult& r) {
  std::string s = summary_line(r.err);
  ASSERT_FALSE(s.empty()) << "UFFDLAZY_STATS=1 must still print the summary; stderr:\n" << r.err;
  EXPECT_TRUE(contains(s, " inactive uffd=none")) << s;
  EXPECT_EQ(summary_field(s, "faults"), 0) << s;
  EXPECT_EQ(summary_field(s, "regions"), 0) << s;
}

// --- a seccomp profile that denies userfaultfd ---------------------------------------------------

TEST(FailOpen, SeccompDeniedUserfaultfdRunsThePlainProgram) {
  ProcessResult plain = run_plain_touch();
  ProcessResult r = run_launched("no_userfaultfd", shim_path(), target_path("memory_rules"), kTouch,
                                 {"UFFDLAZY_STATS=1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  std::string line = expect_one_fail_open_line(r);
  EXPECT_TRUE(contains(line, "userfaultfd(2): Operation not permitted (EPERM)")) << line;
  EXPECT_TRUE(contains(line, "/dev/userfaultfd: Operation not permitted (EPERM)")) << line;
  EXPECT_TRUE(contains(line, "running without lazy paging")) << line;
  // Without UFFDLAZY_USER_MODE_ONLY the last resort is not tried, so not mentioned.
  EXPECT_FALSE(contains(line, "user-mode-only")) << line;
  expect_inactive_summary(r);
  // Nothing else: the fail-open line and the account, no warnings.
  EXPECT_EQ(lines_starting_with(r.err, "uffdlazy:").size(), 2u) << r.err;
}

TEST(FailOpen, SeccompDeniedUserfaultfdWithStrictExits3BeforeTheProgramRuns) {
  ProcessResult r = run_launched("no_userfaultfd", shim_path(), target_path("memory_rules"), kTouch,
                                 {"UFFDLAZY_STRICT=1", "UFFDLAZY_STATS=1"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.out, "") << "the program must not have run";
  std::string line = expect_one_fail_open_line(r);
  EXPECT_TRUE(contains(line, "(EPERM)")) << line;
  EXPECT_TRUE(contains(line, "UFFDLAZY_STRICT=1, so exiting")) << line;
  EXPECT_FALSE(contains(line, "running without lazy paging")) << line;
}

TEST(FailOpen, SeccompDeniedUserModeOnlyFallbackIsNamedToo) {
  ProcessResult plain = run_plain_touch();
  ProcessResult r = run_launched("no_userfaultfd", shim_path(), target_path("memory_rules"), kTouch,
                                 {"UFFDLAZY_USER_MODE_ONLY=1", "UFFDLAZY_STATS=1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  std::string line = expect_one_fail_open_line(r);
  EXPECT_TRUE(contains(line, "user-mode-only: Operation not permitted (EPERM)")) << line;
  EXPECT_TRUE(lines_starting_with(r.err, kUserModeWarning).empty()) << r.err;
  expect_inactive_summary(r);
}

// The control: the same program, shim and settings without a launcher is paged lazily, so the
// launchers take away userfaultfd and nothing else the shim needs.
TEST(FailOpen, ControlWithoutALauncherTheShimServesFaults) {
  ProcessResult plain = run_plain_touch();
  ProcessResult r = run_process({"/usr/bin/env", "LD_PRELOAD=" + shim_path(), "UFFDLAZY_STATS=1",
                                 target_path("memory_rules"), "touch", "256"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  EXPECT_TRUE(lines_starting_with(r.err, kFailOpenPrefix).empty()) << r.err;
  std::string s = summary_line(r.err);
  ASSERT_FALSE(s.empty()) << r.err;
  EXPECT_GE(summary_field(s, "faults"), 256) << s;
  EXPECT_GE(summary_field(s, "regions"), 1) << s;
  EXPECT_FALSE(contains(s, "inactive")) << s;
}

// The launchers change nothing for a program that does not use userfaultfd.
TEST(FailOpen, ControlLaunchersAloneLeaveTheProgramAlone) {
  ProcessResult plain = run_plain_touch();
  WorldReadableCopies copies;
  for (const std::string launcher : {"no_userfaultfd", "as_nobody"}) {
    ProcessResult r = run_process({target_path(launcher), copies.memory_rules(), "touch", "256"});
    EXPECT_EQ(r.exit_code, 0) << launcher << ": " << r.err;
    EXPECT_EQ(r.out, plain.out) << launcher;
    EXPECT_EQ(r.err, "") << launcher;
  }
  ProcessResult id = run_process({target_path("as_nobody"), "/usr/bin/id", "-u"});
  EXPECT_EQ(id.out, "65534\n") << id.err;
}

// --- an unprivileged user --------------------------------------------------------------------------

TEST(FailOpen, UnprivilegedUserRunsThePlainProgram) {
  ProcessResult plain = run_plain_touch();
  WorldReadableCopies copies;
  ProcessResult r = run_launched("as_nobody", copies.shim(), copies.memory_rules(), kTouch, {"UFFDLAZY_STATS=1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  std::string line = expect_one_fail_open_line(r);
  // Kernel-mode faults need CAP_SYS_PTRACE (vm.unprivileged_userfaultfd=0); the device is root's.
  EXPECT_TRUE(contains(line, "userfaultfd(2): Operation not permitted (EPERM)")) << line;
  EXPECT_TRUE(contains(line, "/dev/userfaultfd: Permission denied (EACCES)")) << line;
  EXPECT_TRUE(contains(line, "running without lazy paging")) << line;
  expect_inactive_summary(r);
}

TEST(FailOpen, UnprivilegedUserWithStrictExits3) {
  WorldReadableCopies copies;
  ProcessResult r = run_launched("as_nobody", copies.shim(), copies.memory_rules(), kTouch, {"UFFDLAZY_STRICT=1"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "");
  std::string line = expect_one_fail_open_line(r);
  EXPECT_TRUE(contains(line, "UFFDLAZY_STRICT=1, so exiting")) << line;
}

// Any user may have a user-mode-only userfaultfd: with UFFDLAZY_USER_MODE_ONLY=1 the shim takes
// it, warns once that a system call into a page not yet served fails with EFAULT, and pages lazily.
TEST(FailOpen, UnprivilegedUserWithUserModeOnlyWarnsAndPagesLazily) {
  ProcessResult plain = run_plain_touch();
  WorldReadableCopies copies;
  ProcessResult r = run_launched("as_nobody", copies.shim(), copies.memory_rules(), kTouch,
                                 {"UFFDLAZY_USER_MODE_ONLY=1", "UFFDLAZY_STATS=1", "UFFDLAZY_STRICT=1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  auto warnings = lines_starting_with(r.err, kUserModeWarning);
  ASSERT_EQ(warnings.size(), 1u) << r.err;
  EXPECT_TRUE(contains(warnings[0], "EFAULT")) << warnings[0];
  EXPECT_TRUE(lines_starting_with(r.err, kFailOpenPrefix).empty()) << r.err;
  std::string s = summary_line(r.err);
  ASSERT_FALSE(s.empty()) << r.err;
  EXPECT_TRUE(contains(s, " uffd=userfaultfd(2) user-mode-only")) << s;
  EXPECT_FALSE(contains(s, "inactive")) << s;
  EXPECT_GE(summary_field(s, "faults"), 256) << s;
}

// --- configuration errors and UFFDLAZY_DISABLE ------------------------------------------------------

ProcessResult run_with_settings(const std::map<std::string, std::string>& env) {
  RunOptions opt;
  opt.with_shim = true;
  opt.env = env;
  opt.timeout_seconds = 60;
  return run_process({target_path("memory_rules"), "touch", "256"}, opt);
}

TEST(FailOpenConfig, MalformedMinSizeExits2NamingTheVariable) {
  ProcessResult r = run_with_settings({{"UFFDLAZY_MIN_SIZE", "lots"}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "") << "the program must not run with a setting the shim cannot honour";
  auto lines = lines_starting_with(r.err, "uffdlazy: ");
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_TRUE(contains(lines[0], "UFFDLAZY_MIN_SIZE")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "'lots'")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "K, M or G")) << lines[0];
}

TEST(FailOpenConfig, MisspelledVariableExits2NamingIt) {
  ProcessResult r = run_with_settings({{"UFFDLAZY_STRIC", "1"}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "unknown variable UFFDLAZY_STRIC ")) << r.err;
}

TEST(FailOpenConfig, MalformedBooleanExits2) {
  ProcessResult r = run_with_settings({{"UFFDLAZY_STRICT", "maybe"}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "UFFDLAZY_STRICT='maybe' is not valid")) << r.err;
}

TEST(FailOpenConfig, DisableGivesPlainBehaviour) {
  ProcessResult plain = run_plain_touch();
  ProcessResult r = run_with_settings({{"UFFDLAZY_DISABLE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  EXPECT_EQ(r.err, "") << "a disabled shim prints nothing";
  // Disabled means not even trying: strict mode cannot trigger where userfaultfd is denied.
  ProcessResult denied = run_launched("no_userfaultfd", shim_path(), target_path("memory_rules"), kTouch,
                                      {"UFFDLAZY_DISABLE=1", "UFFDLAZY_STRICT=1"});
  EXPECT_EQ(denied.exit_code, 0) << denied.err;
  EXPECT_EQ(denied.out, plain.out);
  EXPECT_EQ(denied.err, "");
}

// UFFDLAZY_DISABLE=1 switches the shim off ("load, but do nothing"): a summary line from a
// disabled shim would read as an inactive, failed-open one.
TEST(FailOpenConfig, DisableWithStatsPrintsNoSummary) {
  ProcessResult plain = run_plain_touch();
  ProcessResult r = run_with_settings({{"UFFDLAZY_DISABLE", "1"}, {"UFFDLAZY_STATS", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain.out);
  EXPECT_EQ(summary_line(r.err), "") << "UFFDLAZY_DISABLE=1 must print no summary, even with UFFDLAZY_STATS=1";
}

}  // namespace
}  // namespace uffdlazy::test
