// Restoring from a bad snapshot never runs the program: missing, empty, truncated, not a
// snapshot, a future version, a damaged header, section table or index, or recorded from another
// program each stop it with status 2 and a line naming the file and the problem, before main()
// (nothing on stdout), through `uffdlazy restore` and through the environment alike. A damaged
// data page is only found when it is served: the process is killed rather than handed it.
// Recording to a place that cannot take the file leaves the program's run and status alone.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/snapshot_reader.h"
#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

using snap::SnapshotReader;

std::string rules() { return target_path("snapshot_rules"); }

// One good recording of snapshot_rules, shared by the tests below.
struct Good {
  TempDir dir;
  std::string file = dir.file("good.snap");
  ProcessResult result;
  Good() {
    RunOptions opt;
    opt.env = {{"UFFDLAZY_FAULT_AROUND", "1"}};
    result = record(file, {}, {rules(), "fill"}, opt);
  }
};

Good& good() {
  static Good g;
  return g;
}

// Both routes to a restore must refuse `file` the same way.
void expect_refused(const std::string& file, const std::vector<std::string>& words) {
  RunOptions env_route;
  env_route.with_shim = true;
  env_route.env = {{"UFFDLAZY_SNAPSHOT", file}};
  const ProcessResult results[2] = {restore(file, {}, {rules(), "check", "all"}),
                                    run_process({rules(), "check", "all"}, env_route)};
  const char* route[2] = {"uffdlazy restore", "LD_PRELOAD + UFFDLAZY_SNAPSHOT"};
  for (int i = 0; i < 2; i++) {
    const ProcessResult& r = results[i];
    SCOPED_TRACE(route[i]);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.out, "") << "the program ran";
    const std::string prefix = "uffdlazy: " + file + ": ";
    EXPECT_NE(r.err.find(prefix), std::string::npos) << r.err;
    for (const std::string& w : words) EXPECT_NE(r.err.find(w), std::string::npos) << "'" << w << "' in: " << r.err;
    EXPECT_EQ(r.err.find("uffdlazy: restore "), std::string::npos) << "nothing was served: " << r.err;
  }
}

TEST(SnapshotBadInput, GoodSnapshotRestoresThroughBothRoutes) {
  // The control: the same runs with the intact file succeed.
  Good& g = good();
  ASSERT_EQ(g.result.exit_code, 0) << g.result.err;
  RunOptions env_route;
  env_route.with_shim = true;
  env_route.env = {{"UFFDLAZY_SNAPSHOT", g.file}};
  for (const ProcessResult& r : {restore(g.file, {}, {rules(), "check", "all"}),
                                 run_process({rules(), "check", "all"}, env_route)}) {
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("mismatches=0 failures=0"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("regions matched=7 of 7"), std::string::npos) << r.err;
  }
}

TEST(SnapshotBadInput, MissingEmptyOrDirectory) {
  TempDir dir;
  expect_refused(dir.file("missing.snap"), {"cannot open", "No such file"});
  write_file(dir.file("empty.snap"), "");
  expect_refused(dir.file("empty.snap"), {"empty", "not a uffdlazy snapshot"});
  expect_refused(dir.path(), {"not a regular file"});
}

TEST(SnapshotBadInput, Truncated) {
  Good& g = good();
  ASSERT_EQ(g.result.exit_code, 0) << g.result.err;
  const std::string data = read_file(g.file);
  TempDir dir;
  // Inside the fixed header, inside the executable path, in the data, one byte short.
  for (size_t cut : {size_t(100), size_t(200), data.size() / 2, data.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const std::string f = dir.file("cut" + std::to_string(cut) + ".snap");
    write_file(f, data.substr(0, cut));
    expect_refused(f, {"truncated", "the file has " + std::to_string(cut) + " bytes"});
  }
}

TEST(SnapshotBadInput, NotASnapshot) {
  Good& g = good();
  ASSERT_EQ(g.result.exit_code, 0) << g.result.err;
  TempDir dir;
  copy_patched(g.file, dir.file("magic.snap"), 0, "NOTSNAPS");
  expect_refused(dir.file("magic.snap"), {"not a uffdlazy snapshot", "bad magic"});
  // An executable is not a snapshot either.
  expect_refused(rules(), {"not a uffdlazy snapshot"});
}

TEST(SnapshotBadInput, FutureMajorVersion) {
  Good& g = good();
  ASSERT_EQ(g.result.exit_code, 0) << g.result.err;
  TempDir dir;
  // version_major (u16 at offset 8) = 3, minor 0: reported as a version, not as damage.
  copy_patched(g.file, dir.file("v3.snap"), 8, std::string("\x03\x00\x00\x00", 4));
  expect_refused(dir.file("v3.snap"), {"unsupported snapshot format version 3.0"});
}

TEST(SnapshotBadInput, FutureMinorVersionIsRead) {
  // The control for the version test: a minor bump only adds, so a 2.7 file (header checksum
  // recomputed) restores like the 2.0 one.
  Good& g = good();
  ASSERT_EQ(g.result.exit_code, 0) << g.result.err;
  std::string data = read_file(g.file);
  data[10] = 7;
  data[11] = 0;
  uint32_t header_size = 0;
  std::memcpy(&header_size, data.data() + 12, 4);
  ASSERT_LE(header_size, data.size());
  const uint64_t sum = snap::checksum_with_zeroed_u64(data.data(), header_size, 16);
  std::memcpy(data.data() + 16, &sum, 8);
  TempDir dir;
  write_file(dir.file("v1.7.snap"), data);
  ProcessResult r = restore(dir.file("v1.7.snap"), {}, {rules(), "check", "all"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("regions matched=7 of 7"), std::string::npos) << r.err;
}

TEST(SnapshotBadInput, DamagedHeaderSectionTableOrIndex) {
  Good& g = good();
  ASSERT_EQ(g.result.exit_code, 0) << g.result.err;
  SnapshotReader reader;
  ASSERT_TRUE(reader.open(g.file.c_str()).ok());
  TempDir dir;
  // A byte of created_ns: covered by the header checksum only.
  copy_flipped(g.file, dir.file("header.snap"), 41);
  expect_refused(dir.file("header.snap"), {"header checksum mismatch", "damaged"});
  // A byte of the exe path (inside the header too).
  copy_flipped(g.file, dir.file("path.snap"), reader.header().exe_path_offset + 2);
  expect_refused(dir.file("path.snap"), {"header checksum mismatch"});
  // The length field of the first section table entry.
  copy_flipped(g.file, dir.file("sections.snap"), reader.header().section_table_offset + 16);
  expect_refused(dir.file("sections.snap"), {"checksum mismatch", "damaged"});
  // The checksum of one page entry in the page index (region 3, page 5).
  const uint64_t entry = reader.entry_position(3, 5);
  ASSERT_NE(entry, 0u);
  copy_flipped(g.file, dir.file("index.snap"), entry + 9);
  expect_refused(dir.file("index.snap"), {"index checksum mismatch", "damaged"});
}

TEST(SnapshotBadInput, RecordedFromAnotherProgram) {
  TempDir dir;
  const std::string foreign = dir.file("foreign.snap");
  ProcessResult rec = record(foreign, {}, {target_path("memory_rules"), "touch", "64"});
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  ASSERT_TRUE(record_line(rec.err, foreign).found) << rec.err;
  expect_refused(foreign, {"foreign snapshot", "different executable", "memory_rules"});
}

TEST(SnapshotBadInput, DamagedDataPageKillsInsteadOfServingIt) {
  Good& g = good();
  ASSERT_EQ(g.result.exit_code, 0) << g.result.err;
  SnapshotReader reader;
  ASSERT_TRUE(reader.open(g.file.c_str()).ok());
  // Page 20 of the pattern's region 2 is a data page of its own (no duplicate shares its block).
  const uint64_t tag = rules::data_tag(2, 20);
  int64_t region = -1;
  uint64_t block = 0;
  for (uint64_t i = 0; i < reader.region_count() && region < 0; i++) {
    if (reader.region(i).page_count <= 20) continue;
    snap::PageRef ref = reader.page(i, 20);
    uint64_t w0 = 0;
    if (ref.kind == snap::PageKind::kData) std::memcpy(&w0, ref.data, 8);
    if (w0 == tag) {
      region = int64_t(i);
      block = ref.offset;
    }
  }
  ASSERT_GE(region, 0) << "no snapshot region holds the pattern's region 2";
  TempDir dir;
  const std::string bad = dir.file("bad-page.snap");
  copy_flipped(g.file, bad, block + 100);
  const std::string where = "region " + std::to_string(region) + " page 20";

  ProcessResult verify = run_process({cli_path(), "verify", bad});
  EXPECT_EQ(verify.exit_code, 1) << verify.out << verify.err;
  EXPECT_NE(verify.out.find(where + ": checksum mismatch"), std::string::npos) << verify.out;

  // Regions 0 and 1 are checked (and reported) before region 2 is reached; page 20 of region 2 is
  // never handed to the program, so neither region 2 nor the total is ever reported.
  RunOptions env_route;
  env_route.with_shim = true;
  env_route.env = {{"UFFDLAZY_SNAPSHOT", bad}};
  const char* route[2] = {"uffdlazy restore", "LD_PRELOAD + UFFDLAZY_SNAPSHOT"};
  const ProcessResult results[2] = {restore(bad, {}, {rules(), "check", "all"}),
                                    run_process({rules(), "check", "all"}, env_route)};
  for (int i = 0; i < 2; i++) {
    const ProcessResult& r = results[i];
    SCOPED_TRACE(route[i]);
    EXPECT_EQ(r.signal, SIGKILL) << r.exit_code << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("failed its checksum"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("snapshot " + where + " "), std::string::npos) << r.err;
    EXPECT_EQ(r.out,
              "region 0: pages=96 recorded=96 zeroed=0 ok\n"
              "region 1: pages=64 recorded=64 zeroed=0 ok\n")
        << r.err;
  }
}

TEST(SnapshotBadInput, UnwritableRecordingLeavesTheProgramAlone) {
  TempDir dir;
  struct Case {
    std::string file;
    std::string problem;
  };
  mkdir(dir.file("a-directory").c_str(), 0755);
  write_file(dir.file("a-directory/keep"), "x");
  const Case cases[] = {
      {"/etc/passwd/x.snap", "cannot create the temporary snapshot file: Not a directory"},  // under a file
      {dir.file("no-such-dir/x.snap"), "cannot create the temporary snapshot file: No such file or directory"},
      {dir.file("a-directory"), "cannot move the finished snapshot to its name: Is a directory"},
  };
  int status = 3;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    for (bool env_route : {false, true}) {
      SCOPED_TRACE(env_route ? "UFFDLAZY_RECORD" : "uffdlazy record");
      const std::string st = std::to_string(status);
      ProcessResult r;
      if (env_route) {
        RunOptions opt;
        opt.with_shim = true;
        opt.env = {{"UFFDLAZY_RECORD", c.file}};
        r = run_process({rules(), "fill", st}, opt);
      } else {
        r = record(c.file, {}, {rules(), "fill", st});
      }
      EXPECT_EQ(r.exit_code, status) << r.out << r.err;  // the program's own status
      EXPECT_EQ(r.out, "fill regions=7 done\n");
      EXPECT_NE(r.err.find("uffdlazy: snapshot " + c.file + ": " + c.problem), std::string::npos) << r.err;
      EXPECT_FALSE(record_line(r.err, c.file).found) << r.err;
      status++;
    }
  }
  EXPECT_FALSE(file_exists("/etc/passwd/x.snap"));
  // Nothing left behind: no final file, no temporary one, the directory untouched.
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"a-directory"}));
  EXPECT_EQ(read_file(dir.file("a-directory/keep")), "x");

  // The control: a writable place gets the file, and the status still passes through.
  ProcessResult ok = record(dir.file("ok.snap"), {}, {rules(), "fill", "9"});
  EXPECT_EQ(ok.exit_code, 9) << ok.err;
  EXPECT_TRUE(record_line(ok.err, dir.file("ok.snap")).found) << ok.err;
  EXPECT_EQ(run_process({cli_path(), "verify", dir.file("ok.snap")}).exit_code, 0);
}

}  // namespace
}  // namespace uffdlazy::test
