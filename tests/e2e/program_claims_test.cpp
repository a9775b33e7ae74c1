// Memory the program takes for itself, and memory read by something other than a plain access:
// tests/targets/program_claims.cpp run with and without the shim. Where the shim can be
// transparent the outputs must match byte for byte; where the kernel leaves no choice (another
// process reading memory the shim has not served yet), the test says exactly what differs.
#include <gtest/gtest.h>

#include <csignal>
#include <regex>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

using Runs = PlainAndShim;

// A hang (the failures these tests catch) ends a run as a kill after 60 s.
Runs run_both(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  return run_target_both_ways("program_claims", args, env, 60);
}

void expect_same(const Runs& r) {
  EXPECT_EQ(r.plain.exit_code, 0) << r.plain.out << r.plain.err;
  EXPECT_EQ(r.shim.exit_code, 0) << r.shim.out << r.shim.err;
  EXPECT_EQ(r.shim.out, r.plain.out);
  // The summary is written at exit after a round trip to the monitor: a mute doorbell hangs there.
  EXPECT_FALSE(r.summary.empty()) << r.shim.err;
}

// `text` with the line that starts with `prefix` replaced by `line`.
std::string with_line(std::string text, const std::string& prefix, const std::string& line) {
  const size_t at = text.find(prefix);
  EXPECT_NE(at, std::string::npos) << prefix << " in " << text;
  if (at == std::string::npos) return text;
  const size_t end = text.find('\n', at);
  return text.replace(at, end - at, line);
}

// The program's own userfaultfd registers part of a mapping the shim registered, a range across two
// of them, and (with a 4K minimum) a single page: the shim steps aside there, and the program's
// handler serves its faults and gets its REMOVE, UNMAP and REMAP events exactly as without the shim.
TEST(ProgramClaims, OwnUserfaultfdRegistersMemoryTheShimRegisteredAsWithoutTheShim) {
  for (const auto& [how, via, min_size] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"syscall", "ioctl", "64K"}, {"device", "syscall", "4K"}}) {
    SCOPED_TRACE(how + " " + via + " " + min_size);
    Runs r = run_both({"own_uffd", how, via}, {{"UFFDLAZY_MIN_SIZE", min_size}});
    expect_same(r);
    EXPECT_NE(r.plain.out.find("register pages 56..71: ok"), std::string::npos) << r.plain.out;
    EXPECT_NE(r.plain.out.find("handler: faults=35 remove=1 unmap=2 remap=1"), std::string::npos) << r.plain.out;
    // Three pieces (one range inside a region, one across two), and the lone page with a 4K minimum.
    EXPECT_EQ(summary_field(r.summary, "aside"), min_size == "4K" ? 4 : 3) << r.summary;
  }
}

// The shim's fault-around (UFFDLAZY_FAULT_AROUND pages from a touched page on) has put pages in
// place before the program registers the rest of the mapping: those read zeros and never reach the
// program's handler. With a fault-around of 1, the handler sees every fault it sees without the shim.
TEST(ProgramClaims, OwnUserfaultfdAfterATouchMissesOnlyTheShimsFaultAround) {
  Runs exact = run_both({"own_uffd_after_touch"}, {{"UFFDLAZY_FAULT_AROUND", "1"}});
  expect_same(exact);
  Runs around = run_both({"own_uffd_after_touch"});
  ASSERT_EQ(around.plain.exit_code, 0) << around.plain.err;
  EXPECT_EQ(around.shim.exit_code, 0) << around.shim.err;
  const std::string plain_pages = "pages: Abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl";
  ASSERT_NE(around.plain.out.find(plain_pages + "\nhandler: faults=63\n"), std::string::npos) << around.plain.out;
  // Pages 1..15 were put in place with page 0 (16 pages): zeros, no fault for the handler.
  std::string expected = with_line(around.plain.out, "pages: ", "pages: A" + std::string(15, '.') + plain_pages.substr(23));
  expected = with_line(expected, "handler: ", "handler: faults=48");
  EXPECT_EQ(around.shim.out, expected);
}

// Locked memory is populated by the kernel (mlock, MAP_LOCKED, mlockall, and a mremap that grows
// it): the shim steps aside for it. Before, a grown locked mapping hung in mremap, and after
// mlockall(MCL_CURRENT) the exit-time summary hung (its doorbell, MADV_DONTNEED, refused).
TEST(ProgramClaims, LockedMemoryGrowsDropsAndExitsAsWithoutTheShim) {
  for (const char* form : {"mlock", "mlock2", "onfault", "syscall", "map_locked", "mlockall_current",
                           "mlockall_future", "mlockall_onfault"}) {
    SCOPED_TRACE(form);
    Runs r = run_both({"mlock", form});
    expect_same(r);
    EXPECT_NE(r.plain.out.find("lock (" + std::string(form) + "): ok"), std::string::npos) << r.plain.out;
    EXPECT_NE(r.plain.out.find("pages: ACD. E"), std::string::npos) << r.plain.out;
  }
}

// Reads and writes of the program's own untouched memory through /proc/self/mem work as without
// the shim: pread, pwrite, lseek with read and write, read-only memory, a transfer across present
// and missing pages (whole, not cut short), a dup'ed descriptor, and EIO where nothing is mapped.
TEST(ProgramClaims, ProcSelfMemReadsAndWritesUntouchedMemoryAsWithoutTheShim) {
  Runs r = run_both({"proc_mem"});
  expect_same(r);
  EXPECT_NE(r.plain.out.find("pread of 8 pages across touched and untouched: 32768 bytes"), std::string::npos)
      << r.plain.out;
  EXPECT_NE(r.plain.out.find("pread of an unmapped address: EIO"), std::string::npos) << r.plain.out;
  EXPECT_GE(summary_field(r.summary, "faults"), 1) << r.summary;
}

// Not covered: stdio and the vectored calls on /proc/self/mem fail on memory the shim has not
// served yet (fread: 0 bytes, preadv: EIO), as every access did before.
TEST(ProgramClaims, ProcSelfMemThroughStdioOrPreadvFailsOnUntouchedMemory) {
  Runs r = run_both({"proc_mem_uncovered"});
  ASSERT_EQ(r.plain.exit_code, 0) << r.plain.err;
  EXPECT_EQ(r.shim.exit_code, 0) << r.shim.err;
  EXPECT_EQ(r.plain.out, "fread of an untouched page: 4 bytes\npreadv of an untouched page: 4 bytes \"....\"\n");
  EXPECT_EQ(r.shim.out, "fread of an untouched page: 0 bytes\npreadv of an untouched page: EIO\n");
}

// Another process (a debugger, here the parent) reading or writing memory the shim has not served
// yet: /proc/PID/mem and ptrace PEEK/POKE go through a page lookup that may not wait for the
// monitor, so they fail with EIO; process_vm_readv/writev wait, and work.
TEST(ProgramClaims, AnotherProcessGetsEioFromProcMemAndPtraceButProcessVmReadvWorks) {
  Runs r = run_both({"other_process"});
  ASSERT_EQ(r.plain.exit_code, 0) << r.plain.err;
  EXPECT_EQ(r.shim.exit_code, 0) << r.shim.err;
  ASSERT_NE(r.plain.out.find("child: ok"), std::string::npos) << r.plain.out;
  std::string expected = with_line(r.plain.out, "/proc/PID/mem read of an untouched page:",
                                   "/proc/PID/mem read of an untouched page: EIO");
  expected = with_line(expected, "/proc/PID/mem write to an untouched page:", "/proc/PID/mem write to an untouched page: EIO");
  expected = with_line(expected, "ptrace PEEKDATA of an untouched page:", "ptrace PEEKDATA of an untouched page: EIO");
  expected = with_line(expected, "ptrace POKEDATA to an untouched page:", "ptrace POKEDATA to an untouched page: EIO");
  EXPECT_EQ(r.shim.out, expected);
}

// A crashing program's core file holds the same bytes for its memory (pages never touched are
// holes, read as zeros, in both); it also holds the shim's hidden threads (the monitor, ...).
TEST(ProgramClaims, CoreDumpHoldsTheSameMemory) {
  TempDir plain_dir, shim_dir;
  ProcessResult plain = run_process({target_path("program_claims"), "core_dump", plain_dir.path()});
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_STRICT", "1"}};
  ProcessResult shim = run_process({target_path("program_claims"), "core_dump", shim_dir.path()}, opt);
  ASSERT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_EQ(shim.exit_code, 0) << shim.out << shim.err;
  EXPECT_EQ(plain.out,
            "child: Aborted, core dumped: yes\n"
            "the mapping in the core: A.............................B.................................\n");
  EXPECT_EQ(shim.out, plain.out);
  EXPECT_NE(plain.err.find("threads in the core: 1"), std::string::npos) << plain.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(shim.err, m, std::regex("threads in the core: (\\d+)"))) << shim.err;
  EXPECT_GE(std::stol(m[1]), 2) << shim.err;
}

// A process restored from a snapshot dumps core while pages are still owed: the kernel dumps what
// is in place and takes no fault for a core dump, so the core holds the pages served and zeros where
// the snapshot still owed pages (here region 0 of snapshot_rules: its first 16 pages read, the rest owed).
TEST(ProgramClaims, CoreDumpOfARestoredProcessHoldsZerosWherePagesWereStillOwed) {
  TempDir dir, cores;
  const std::string snap = dir.file("rules.snap");
  RunOptions rec_opt;
  rec_opt.env = {{"UFFDLAZY_FAULT_AROUND", "1"}};
  ProcessResult rec = record(snap, {}, {target_path("snapshot_rules"), "fill"}, rec_opt);
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  // Run directly with the shim (not through uffdlazy restore, which would die of the same signal).
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_SNAPSHOT", snap}, {"UFFDLAZY_PREFETCH", "none"}, {"UFFDLAZY_READAHEAD", "1"}};
  ProcessResult res = run_process({target_path("snapshot_rules"), "check", "core", cores.path()}, opt);
  EXPECT_EQ(res.signal, SIGABRT) << res.out << res.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(res.err, m, std::regex("core: region 0 at (0x[0-9a-f]+)"))) << res.err;
  const std::vector<std::string> files = cores.list();
  ASSERT_EQ(files.size(), 1u) << "core_pattern must name a plain file in the working directory";
  ProcessResult pages = run_process({target_path("program_claims"), "core_pages", cores.file(files[0]), m[1], "96"});
  std::string expected;
  for (int p = 0; p < 96; p++) {
    const rules::Kind k = rules::kind_of(0, uint64_t(p));
    expected += p < 16 && k != rules::Kind::kAbsent && k != rules::Kind::kZero ? '#' : '.';
  }
  EXPECT_EQ(pages.out, expected + "\n") << pages.err;
}

// The shim's own mappings count against vm.max_map_count: about two dozen with the default
// settings (its own memory, the library's 5, 8 from patching libc and ld.so), fewer with
// intercept=symbols; never more than the 32 the documentation promises.
TEST(ProgramClaims, TheShimTakesAtMostThirtyTwoMappings) {
  auto mappings = [](const std::string& out) {
    std::smatch m;
    return std::regex_search(out, m, std::regex("mappings at start: (\\d+)")) ? std::stol(m[1]) : -1;
  };
  Runs r = run_both({"map_count"});
  ASSERT_EQ(r.plain.exit_code, 0) << r.plain.err;
  ASSERT_EQ(r.shim.exit_code, 0) << r.shim.err;
  const long taken = mappings(r.shim.out) - mappings(r.plain.out);
  EXPECT_GT(taken, 0) << r.plain.out << r.shim.out;
  EXPECT_LE(taken, 32) << r.plain.out << r.shim.out;
  Runs symbols = run_both({"map_count"}, {{"UFFDLAZY_INTERCEPT", "symbols"}});
  const long by_symbols = mappings(symbols.shim.out) - mappings(symbols.plain.out);
  EXPECT_GT(by_symbols, 0) << symbols.plain.out << symbols.shim.out;
  EXPECT_LT(by_symbols, taken) << symbols.plain.out << symbols.shim.out;
}

}  // namespace
}  // namespace uffdlazy::test
