// The shim's descriptors never take the numbers a program expects to get (docs/descriptors.md):
// a program's first open() returns the same number with and without the shim, whatever the shim
// was asked to do, and the descriptors it sees below the shim's high range are the same. And a
// program that closes the run page's descriptor and opens a file at its number never has that
// file touched, by itself or by the programs it runs.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

std::string fd_numbers() { return target_path("fd_numbers"); }

// The shim's own descriptors start at 1000 (RLIMIT_NOFILE is at least 1024 here).
constexpr int kHighFloor = 1000;

struct FdView {
  std::string open_line;            // "open=N"
  std::vector<std::string> low;     // "fd N -> target" below kHighFloor
  std::vector<std::string> high;    // the same from kHighFloor up
};

FdView view_of(const std::string& out) {
  FdView v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("open=", 0) == 0) {
      v.open_line = line;
    } else if (line.rfind("fd ", 0) == 0) {
      (std::stoi(line.substr(3)) < kHighFloor ? v.low : v.high).push_back(line);
    }
  }
  return v;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

RunOptions clean(bool shim, std::map<std::string, std::string> env = {}) {
  RunOptions opt;
  opt.with_shim = shim;
  opt.close_inherited_fds = true;
  opt.env = std::move(env);
  return opt;
}

void expect_same_numbers(const ProcessResult& plain, const ProcessResult& shim, const char* how) {
  SCOPED_TRACE(how);
  ASSERT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  ASSERT_EQ(shim.exit_code, 0) << shim.out << shim.err;
  const FdView a = view_of(plain.out), b = view_of(shim.out);
  EXPECT_EQ(a.open_line, "open=3") << plain.out;
  EXPECT_EQ(b.open_line, a.open_line) << shim.out << shim.err;
  EXPECT_EQ(joined(b.low), joined(a.low)) << "descriptors below the shim's range:\n" << shim.out;
  EXPECT_TRUE(a.high.empty()) << plain.out;
}

TEST(DescriptorNumbers, FirstOpenGetsTheSameNumberWithAndWithoutTheShim) {
  TempDir dir;
  const std::vector<std::string> argv = {fd_numbers(), "first_open"};
  const ProcessResult plain = run_process(argv, clean(false));

  expect_same_numbers(plain, run_process(argv, clean(true, {{"UFFDLAZY_REPORT", dir.file("r.json")}})),
                      "UFFDLAZY_REPORT");
  EXPECT_TRUE(file_exists(dir.file("r.json")));
  expect_same_numbers(plain, run_process(argv, clean(true, {{"UFFDLAZY_RECORD", dir.file("env.snap")}})),
                      "UFFDLAZY_RECORD");
  EXPECT_TRUE(file_exists(dir.file("env.snap")));

  const std::string snap = dir.file("cli.snap");
  const ProcessResult recorded = record(snap, {}, argv, clean(false));
  expect_same_numbers(plain, recorded, "uffdlazy record");
  EXPECT_TRUE(record_line(recorded.err, snap).found) << recorded.err;

  const ProcessResult restored = restore(snap, {}, argv, clean(false));
  expect_same_numbers(plain, restored, "uffdlazy restore");
  RestoreLine line = restore_line(restored.err, snap);
  ASSERT_TRUE(line.found) << restored.err;
  EXPECT_GE(line.matched, 1) << restored.err;
}

// The program finds the run page's descriptor, copies the page's bytes into a file of its own,
// closes the descriptor and puts the file at its number, then runs itself as a child under the
// shim. Neither process may read the file as the run's page (only its identity tells it apart),
// and the outputs are still written.
void expect_file_untouched(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("file at the run descriptor's number\n"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("file unchanged\n"), std::string::npos) << r.out << r.err;
}

TEST(DescriptorNumbers, ProgramThatReusesTheRunDescriptorNeverHasItsFileTouched) {
  TempDir dir;
  {
    SCOPED_TRACE("UFFDLAZY_REPORT");
    const std::string report = dir.file("r.json");
    ProcessResult r = run_process({fd_numbers(), "reuse_run_fd", dir.file("mine.1")},
                                  clean(true, {{"UFFDLAZY_REPORT", report}}));
    expect_file_untouched(r);
    // The plain name holds one process's whole report (the child, whose run page was lost to it,
    // started a run of its own; the last to exit wrote it).
    const std::string json = read_file(report);
    EXPECT_NE(json.find("\"program\""), std::string::npos) << json.substr(0, 400);
    EXPECT_NE(json.find("fd_numbers"), std::string::npos) << json.substr(0, 400);
    EXPECT_EQ(json.find("\"faults\": 0,"), std::string::npos) << json.substr(0, 400);
  }
  {
    SCOPED_TRACE("uffdlazy record");
    const std::string snap = dir.file("reuse.snap");
    ProcessResult r = record(snap, {}, {fd_numbers(), "reuse_run_fd", dir.file("mine.2")}, clean(false));
    expect_file_untouched(r);
    // Both processes still share the run (the child reached the page through uffdlazy's own
    // descriptor): the child, with more memory, exits first and its snapshot keeps the plain
    // name (the parent, with less, writes none); it restores.
    EXPECT_EQ(count_of(r.err, "uffdlazy: snapshot " + snap + " written"), 1u) << r.err;
    ProcessResult back = restore(snap, {}, {fd_numbers(), "touch", "4"}, clean(false));
    EXPECT_EQ(back.exit_code, 0) << back.out << back.err;
    EXPECT_TRUE(restore_line(back.err, snap).found) << back.err;
  }
  {
    SCOPED_TRACE("uffdlazy restore");
    const std::string snap = dir.file("touch.snap");
    ASSERT_EQ(record(snap, {}, {fd_numbers(), "touch", "4"}, clean(false)).exit_code, 0);
    ProcessResult r = restore(snap, {}, {fd_numbers(), "reuse_run_fd", dir.file("mine.3")}, clean(false));
    expect_file_untouched(r);
    EXPECT_EQ(count_of(r.err, "uffdlazy: restore " + snap), 1u) << r.err;
  }
}

}  // namespace
}  // namespace uffdlazy::test
