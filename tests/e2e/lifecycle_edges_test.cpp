// The edges of a process's life under the shim: how it ends, calls the kernel allows only a
// single-threaded process, children sharing its memory that outlive it, clone3 with bad
// arguments, and the shim unloaded by dlclose. Each test runs tests/targets/lifecycle_edges with
// and without the shim and expects the same exit status (or terminating signal) and the same
// output byte for byte. A shim that keeps a finished process alive, or leaves a child hanging on
// a page nobody serves, makes the run hit the harness's limit (killed), which fails the test.
#include <gtest/gtest.h>

#include <csignal>
#include <unistd.h>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

// Long enough for any loaded machine, short enough that a hang fails the test in reasonable time.
constexpr int kHangLimitSeconds = 90;

using Runs = PlainAndShim;

Runs run_both(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  return run_target_both_ways("lifecycle_edges", args, env, kHangLimitSeconds);
}

void expect_same(const Runs& r, int status, int signal = 0) {
  EXPECT_EQ(r.plain.exit_code, status) << r.plain.out << r.plain.err;
  EXPECT_EQ(r.plain.signal, signal) << r.plain.out << r.plain.err;
  EXPECT_EQ(r.shim.exit_code, status) << r.shim.out << r.shim.err;
  EXPECT_EQ(r.shim.signal, signal) << r.shim.out << r.shim.err;
  EXPECT_EQ(r.shim.out, r.plain.out) << r.shim.err;
  EXPECT_EQ(r.plain.out.find("FAIL"), std::string::npos) << r.plain.out;
  EXPECT_EQ(r.shim.err.find("uffdlazy: monitor cannot continue"), std::string::npos) << r.shim.err;
}

// The shim served this run's memory (its summary line says so).
void expect_served(const ProcessResult& shim) {
  const std::string line = summary_line(shim.err);
  ASSERT_FALSE(line.empty()) << shim.err;
  EXPECT_GE(summary_field(line, "faults"), 1) << line;
}

// ---- How a process ends ----------------------------------------------------------------------

// main() calls pthread_exit while another thread runs; the last thread to end makes glibc call
// exit(0): atexit handlers run and stdio is flushed, as without the shim, and the summary is written.
TEST(LifecycleEdges, MainLeavingByPthreadExitEndsWithItsLastThread) {
  Runs r = run_both({"main_pthread_exit"});
  expect_same(r, 0);
  EXPECT_NE(r.plain.out.find("atexit handler ran"), std::string::npos) << r.plain.out;
  expect_served(r.shim);
}

// The only program thread leaves by the exit system call: the process ends with that thread's
// status, running none of the program's exit-time code (no atexit handler, no stdio flush), as
// without the shim; the shim still writes its summary.
TEST(LifecycleEdges, OnlyThreadLeavingByTheExitSystemCallEndsTheProcess) {
  Runs r = run_both({"main_exit_syscall"});
  expect_same(r, 7);
  EXPECT_EQ(r.plain.out.find("atexit"), std::string::npos) << r.plain.out;
  EXPECT_EQ(r.plain.out.find("buffered"), std::string::npos) << r.plain.out;
  expect_served(r.shim);
}

// main leaves by the exit system call (status 5) while another thread runs; that thread is the
// last and leaves by the exit system call too (status 6): the kernel gives the process the status
// of its last thread.
TEST(LifecycleEdges, LastThreadAfterMainLeftByTheExitSystemCallEndsTheProcess) {
  Runs r = run_both({"main_exit_syscall_then_thread"});
  expect_same(r, 6);
  EXPECT_NE(r.plain.out.find("last thread after main"), std::string::npos) << r.plain.out;
  expect_served(r.shim);
}

// seccomp strict mode allows only read, write, exit and sigreturn, and only to the thread that
// entered it: its faults are still served, and its exit system call ends the process.
TEST(LifecycleEdges, SeccompStrictProgramIsPagedAndEndsWithItsStatus) {
  Runs r = run_both({"seccomp_strict"});
  expect_same(r, 3);
  EXPECT_NE(r.plain.out.find("strict: checksum="), std::string::npos) << r.plain.out;
  expect_served(r.shim);
}


// ---- Calls that need a single-threaded process ----------------------------------------------

// unshare of a user namespace (and the flags the kernel allows only a lone thread: CLONE_VM,
// CLONE_SIGHAND, CLONE_THREAD), by the libc wrapper and by syscall(2), with the others beside
// them: the same answers as without the shim, and the memory around each call stays right (pages
// written before, pages never written, memory mapped after).
TEST(LifecycleEdges, UnshareThatNeedsALoneThreadSucceedsAsWithoutTheShim) {
  Runs r = run_both({"unshare", "vm", "sighand", "thread", "fs", "newns", "files", "sysvsem", "raw:user"});
  expect_same(r, 0);
  EXPECT_NE(r.plain.out.find("unshare(raw:user) = 0"), std::string::npos) << r.plain.out;
  Runs wrapper = run_both({"unshare", "user"});
  expect_same(wrapper, 0);
  EXPECT_NE(wrapper.plain.out.find("unshare(user) = 0"), std::string::npos) << wrapper.plain.out;
  expect_served(r.shim);
}

// setns into this process's own mount namespace (the kernel wants the filesystem information not
// shared), its own time namespace (the memory not shared) and a user namespace a child made (the
// caller alone in its thread group).
TEST(LifecycleEdges, SetnsThatNeedsALoneThreadSucceedsAsWithoutTheShim) {
  Runs r = run_both({"setns", "mnt", "time", "user"});
  expect_same(r, 0);
  EXPECT_NE(r.plain.out.find("setns(user) = 0"), std::string::npos) << r.plain.out;
  expect_served(r.shim);
}

// `unshare -r` (util-linux) under the shim: it makes a user namespace and runs the program there.
TEST(LifecycleEdges, UnshareCommandRunsItsProgramInANewUserNamespace) {
  const std::vector<std::string> argv = {"unshare", "-r", "sh", "-c",
                                         "id -u && exec " + target_path("lifecycle_edges") + " unshare vm"};
  RunOptions opt;
  opt.timeout_seconds = kHangLimitSeconds;
  ProcessResult plain = run_process(argv, opt);
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_STATS", "1"}};
  ProcessResult shim = run_process(argv, opt);
  EXPECT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_EQ(shim.exit_code, 0) << shim.out << shim.err;
  EXPECT_EQ(shim.out, plain.out) << shim.err;
  EXPECT_NE(plain.out.find("0\nunshare(vm) = 0"), std::string::npos) << plain.out;
}

// A restore whose pages are still owed when the program unshares its user namespace: every page
// comes back with its recorded content afterwards (served lazily by the monitor started again).
TEST(LifecycleEdges, RestoreCarriesOnAcrossUnshareOfAUserNamespace) {
  TempDir dir;
  const std::string file = dir.file("unshare.snap");
  const std::string program = target_path("lifecycle_edges");
  RunOptions opt;
  opt.timeout_seconds = kHangLimitSeconds;
  ProcessResult recorded = record(file, {}, {program, "restored_unshare", "fill"}, opt);
  ASSERT_EQ(recorded.exit_code, 0) << recorded.out << recorded.err;
  ProcessResult restored =
      restore(file, {"--prefetch", "none", "--readahead", "1", "--stats"}, {program, "restored_unshare", "check"}, opt);
  EXPECT_EQ(restored.exit_code, 0) << restored.out << restored.err;
  EXPECT_NE(restored.out.find("unshare(user) = 0"), std::string::npos) << restored.out << restored.err;
  // The same content as recorded, and no page wrong.
  const size_t at = recorded.out.find("restored pages: ");
  ASSERT_NE(at, std::string::npos) << recorded.out;
  EXPECT_NE(restored.out.find(recorded.out.substr(at)), std::string::npos) << restored.out << restored.err;
  const RestoreLine line = restore_line(restored.err, file);
  ASSERT_TRUE(line.found) << restored.err;
  EXPECT_EQ(line.served, 64) << restored.err;
  // Only the 4 pages read before the unshare were served before it: the other 60 after.
  EXPECT_GE(summary_field(summary_line(restored.err), "requests"), 60) << restored.err;
}

// ---- Children that share the memory and outlive their parent ---------------------------------

// A clone(CLONE_VM) child, with its own copy of the descriptor table or sharing the parent's
// (CLONE_FILES), outlives its parent: afterwards it reads the pages the parent wrote, zeros where
// nobody wrote, and its own new stack pages work (nothing left waiting on a userfaultfd that no
// monitor reads). The harness reads the output until the child has ended.
TEST(LifecycleEdges, CloneVmChildOutlivesItsParent) {
  Runs own = run_both({"clone_vm_outlives"});
  expect_same(own, 0);
  EXPECT_NE(own.plain.out.find("clone(CLONE_VM) child after its parent"), std::string::npos) << own.plain.out;
  Runs shared = run_both({"clone_vm_outlives", "files"});
  expect_same(shared, 0);
  EXPECT_NE(shared.plain.out.find("clone(CLONE_VM) child after its parent"), std::string::npos) << shared.plain.out;
}

// A vfork child kills its parent (SIGKILL: no exit-time code anywhere) and goes on with the
// memory it shared with it.
TEST(LifecycleEdges, VforkChildOutlivesItsKilledParent) {
  Runs r = run_both({"vfork_outlives"});
  expect_same(r, -1, SIGKILL);
  EXPECT_NE(r.plain.out.find("vfork child after its parent"), std::string::npos) << r.plain.out;
}

// ---- clone3 through syscall(2) ---------------------------------------------------------------

// The shim reads clone3's flags to know whether the child copies the memory; arguments the kernel
// cannot read (unmapped, NULL, PROT_NONE, too short, too long) get the kernel's own answer.
TEST(LifecycleEdges, Clone3WithArgumentsTheKernelCannotReadFailsAsWithoutTheShim) {
  Runs r = run_both({"clone3_bad_args"});
  expect_same(r, 0);
  EXPECT_NE(r.plain.out.find("clone3(unmapped) = -1 EFAULT"), std::string::npos) << r.plain.out;
  EXPECT_NE(r.plain.out.find("clone3(valid) child status=9"), std::string::npos) << r.plain.out;
}

// ---- The shim unloaded by the program ----------------------------------------------------------

// A program that dlopen()s the shim and dlclose()s it: the shim stays loaded (libc's patched
// bodies jump into it), and memory calls after the dlclose work as without it.
TEST(LifecycleEdges, DlcloseOfTheShimLeavesItLoaded) {
  const std::vector<std::string> argv = {target_path("lifecycle_edges"), "dlclose_shim"};
  RunOptions opt;
  opt.timeout_seconds = kHangLimitSeconds;
  opt.env = {{"UFFDLAZY_STATS", "1"}, {"UFFDLAZY_STRICT", "1"}};
  ProcessResult plain = run_process({argv[0], argv[1], "none"}, opt);
  ProcessResult loaded = run_process({argv[0], argv[1], shim_path()}, opt);
  EXPECT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_EQ(loaded.exit_code, 0) << loaded.out << loaded.err;
  EXPECT_EQ(loaded.signal, 0) << loaded.out << loaded.err;
  EXPECT_EQ(loaded.out, plain.out);
  // The shim ran (its summary is written at exit, after the dlclose).
  expect_served(loaded);
}

}  // namespace
}  // namespace uffdlazy::test
