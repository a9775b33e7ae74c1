// Interception inside libc: memory that glibc maps for the program (malloc's chunks and heap,
// thread stacks, posix_spawn's stack), the brk heap and a dlopen'ed library's .bss are registered,
// the program's output and exit status do not change, and when libc cannot be patched (forced, or
// its bytes are not the code the shim expects) the shim falls back to symbol interposition and
// says so.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// stderr without the shim's own lines.
std::string program_stderr(const std::string& err) {
  std::string out;
  size_t pos = 0;
  while (pos < err.size()) {
    size_t end = err.find('\n', pos);
    size_t next = end == std::string::npos ? err.size() : end + 1;
    if (err.compare(pos, 10, "uffdlazy: ") != 0) out.append(err, pos, next - pos);
    pos = next;
  }
  return out;
}

double seen_percent(const std::string& summary) {
  size_t p = summary.find(" seen=");
  return p == std::string::npos ? -1 : std::strtod(summary.c_str() + p + 6, nullptr);
}

struct Both {
  ProcessResult plain, shim;
  std::string summary;
};

// Runs the target plainly and under the shim (strict, stats) and checks what both must share.
Both run_both(const std::vector<std::string>& args, std::map<std::string, std::string> env = {}) {
  std::vector<std::string> argv = {target_path("libc_intercept")};
  argv.insert(argv.end(), args.begin(), args.end());
  Both b;
  RunOptions opt;
  opt.timeout_seconds = 120;
  b.plain = run_process(argv, opt);
  opt.with_shim = true;
  opt.env = env;
  opt.env["UFFDLAZY_STATS"] = "1";
  opt.env["UFFDLAZY_STRICT"] = "1";
  b.shim = run_process(argv, opt);
  b.summary = summary_line(b.shim.err);
  EXPECT_EQ(b.plain.exit_code, 0) << b.plain.out << b.plain.err;
  EXPECT_EQ(b.shim.exit_code, 0) << "signal " << b.shim.signal << "\n" << b.shim.out << b.shim.err;
  EXPECT_FALSE(b.plain.out.empty());
  EXPECT_EQ(b.plain.out, b.shim.out);
  EXPECT_FALSE(b.summary.empty()) << b.shim.err;
  return b;
}

TEST(LibcIntercept, BrkHeapGrowsShrinksAndRegrowsWithRightContents) {
  Both b = run_both({"brk"});
  EXPECT_TRUE(contains(b.plain.out, "brk ok 2048 pages")) << b.plain.out;
  EXPECT_TRUE(contains(b.summary, " intercept=libc")) << b.summary;
  // The 8 MiB grown with sbrk was served lazily (it was touched page by page).
  EXPECT_GE(summary_field(b.summary, "faults"), 2048) << b.summary;
  // The shrink reached the monitor as an unmap.
  EXPECT_GE(summary_field(b.summary, "unmap"), 1) << b.summary;
}

TEST(LibcIntercept, MallocMemoryIsRegisteredAndCallocStillZero) {
  Both b = run_both({"malloc", "64"});
  EXPECT_TRUE(contains(b.summary, " intercept=libc")) << b.summary;
  // 16 blocks of 4 MiB, touched every 512 bytes: the first chunks malloc maps itself, the later
  // ones come from the heap once malloc has raised its mapping threshold. All served by the shim.
  EXPECT_GE(summary_field(b.summary, "faults"), 16 * 1024) << b.summary;
  EXPECT_GE(summary_field(b.summary, "regions"), 2) << b.summary;
  // Freed mapped chunks were unmapped, and the monitor saw it.
  EXPECT_GE(summary_field(b.summary, "unmap"), 1) << b.summary;
}

TEST(LibcIntercept, HeapAndMallocChunksLieInRegisteredMappings) {
  Both b = run_both({"registered"});
  EXPECT_TRUE(contains(b.shim.err, "registered malloc-mapped yes")) << b.shim.err;
  EXPECT_TRUE(contains(b.shim.err, "registered heap yes")) << b.shim.err;
  EXPECT_TRUE(contains(b.plain.err, "registered malloc-mapped no")) << b.plain.err;
  // Forced to symbols, malloc's memory is not seen: the option makes the difference.
  Both s = run_both({"registered"}, {{"UFFDLAZY_INTERCEPT", "symbols"}});
  EXPECT_TRUE(contains(s.summary, " intercept=symbols")) << s.summary;
  EXPECT_TRUE(contains(s.shim.err, "registered malloc-mapped no")) << s.shim.err;
  EXPECT_TRUE(contains(s.shim.err, "registered heap no")) << s.shim.err;
  // A forced choice is not a fallback: nothing to say about it.
  EXPECT_FALSE(contains(s.shim.err, "cannot intercept")) << s.shim.err;
}

TEST(LibcIntercept, SignalHandlerThatMapsWhileTheHookRuns) {
  Both b = run_both({"signal"});
  EXPECT_TRUE(contains(b.plain.out, "signal ok")) << b.plain.out;
  EXPECT_TRUE(contains(b.summary, " intercept=libc")) << b.summary;
  // The handler's 256 KiB mappings were registered and served.
  EXPECT_GE(summary_field(b.summary, "regions"), 100) << b.summary;
}

TEST(LibcIntercept, ThreadsThatAllocateAndExit) {
  Both b = run_both({"threads"});
  EXPECT_TRUE(contains(b.summary, " intercept=libc")) << b.summary;
  // Thread stacks and per-thread arenas come from libc's mmap: registered now.
  EXPECT_GE(summary_field(b.summary, "regions"), 4) << b.summary;
  // Exiting threads release their stacks with madvise, which reaches the monitor.
  EXPECT_GE(summary_field(b.summary, "remove"), 1) << b.summary;
}

TEST(LibcIntercept, ForkFromASecondThread) {
  Both b = run_both({"fork-thread"});
  EXPECT_TRUE(contains(b.plain.out, "fork-thread ok")) << b.plain.out;
  EXPECT_EQ(summary_field(b.summary, "fork"), 1) << b.summary;
}

TEST(LibcIntercept, SpawnSystemPopenVforkAndExecWork) {
  Both b = run_both({"spawn"});
  for (const char* line : {"spawned\n", "system\n", "read popen\n", "vforked\n", "forked\n", "spawn ok\n"}) {
    EXPECT_TRUE(contains(b.shim.out, line)) << line << " missing from:\n" << b.shim.out;
  }
  EXPECT_EQ(program_stderr(b.plain.err), program_stderr(b.shim.err));
}

TEST(LibcIntercept, ThreadStackGuardPageStillStopsAnOverflow) {
  RunOptions opt;
  opt.timeout_seconds = 60;
  ProcessResult plain = run_process({target_path("libc_intercept"), "guard"}, opt);
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_STRICT", "1"}};
  ProcessResult shim = run_process({target_path("libc_intercept"), "guard"}, opt);
  EXPECT_EQ(plain.signal, SIGSEGV) << plain.out << plain.err;
  EXPECT_EQ(shim.signal, SIGSEGV) << shim.out << shim.err;
  EXPECT_EQ(plain.out, "overflowing\n");
  EXPECT_EQ(shim.out, plain.out);
}

TEST(LibcIntercept, DlopenedLibraryBssIsRegisteredAndReadsZerosFirst) {
  Both b = run_both({"dlopen", UFFDLAZY_BIG_BSS_LIB});
  // First pass: zeros everywhere; second: the 7s written by the first.
  EXPECT_TRUE(contains(b.plain.out, "dlopen 0 114688\n")) << b.plain.out;
  EXPECT_TRUE(contains(b.shim.err, "registered bss yes")) << b.shim.err;
  EXPECT_TRUE(contains(b.plain.err, "registered bss no")) << b.plain.err;
  // The 16 MiB .bss, touched every 512 bytes, was served by the shim.
  EXPECT_GE(summary_field(b.summary, "faults"), 4096) << b.summary;
}

TEST(LibcIntercept, MostOfAMallocProgramsMemoryIsSeen) {
  Both b = run_both({"registered"});
  // At exit the 32 MiB malloc'd block and the heap are still there: nearly all anonymous memory.
  EXPECT_GE(seen_percent(b.summary), 90.0) << b.summary;
  Both s = run_both({"registered"}, {{"UFFDLAZY_INTERCEPT", "symbols"}});
  EXPECT_LT(seen_percent(s.summary), 10.0) << s.summary;
}

// The verifier's refusal path, run for real: each libc body is shown to it with its system call
// instructions replaced by traps. Nothing is patched, the shim intercepts symbols only, says why
// once, and the program is unchanged.
class AlteredLibc : public ::testing::TestWithParam<const char*> {};

TEST_P(AlteredLibc, FallsBackToSymbolsAndSaysWhy) {
  const std::string name = GetParam();
  Both b = run_both({"malloc", "16"}, {{"UFFDLAZY_TEST_ALTER_LIBC", name}});
  EXPECT_TRUE(contains(b.summary, " intercept=symbols")) << b.summary;
  const std::string why = "uffdlazy: cannot intercept inside libc: libc's " + name + " (";
  EXPECT_TRUE(contains(b.shim.err, why)) << b.shim.err;
  EXPECT_TRUE(contains(b.shim.err, "(altered by UFFDLAZY_TEST_ALTER_LIBC); intercepting exported symbols only"))
      << b.shim.err;
  size_t first = b.shim.err.find("cannot intercept");
  EXPECT_EQ(b.shim.err.find("cannot intercept", first + 1), std::string::npos) << "said more than once: " << b.shim.err;
  // All or nothing: malloc's chunks are not seen, not even through the bodies that were fine.
  EXPECT_EQ(summary_field(b.summary, "faults"), 0) << b.summary;
}

INSTANTIATE_TEST_SUITE_P(EachBody, AlteredLibc, ::testing::Values("mmap64", "munmap", "mremap", "madvise", "brk"));

TEST(LibcIntercept, FallbackLineOnlyWithStats) {
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_TEST_ALTER_LIBC", "brk"}};
  ProcessResult r = run_process({target_path("libc_intercept"), "malloc", "16"}, opt);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "uffdlazy:")) << r.err;
}

TEST(LibcIntercept, BadInterceptValueStopsTheProgram) {
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_INTERCEPT", "syscalls"}};
  ProcessResult r = run_process({target_path("libc_intercept"), "brk"}, opt);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "UFFDLAZY_INTERCEPT='syscalls' is not valid; use libc")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace
}  // namespace uffdlazy::test
