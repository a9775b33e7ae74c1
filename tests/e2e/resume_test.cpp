// Whole-process checkpoint and resume: a program checkpointed at any point and resumed must print
// exactly what an uninterrupted run prints, leave exactly the same files, and exit with the same
// status, eagerly or lazily, with one or several threads, and across generations.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/resume_test_util.h"
#include "core/snapshot/format.h"
#include "tools/report_model.h"

namespace uffdlazy::test {
namespace {

TEST(Resume, PausedInAReadAtSeveralPointsEagerAndLazy) {
  for (int at : {0, 4, 9}) {
    for (bool lazy : {true, false}) {
      SCOPED_TRACE("pause at step " + std::to_string(at) + (lazy ? ", lazy" : ", eager"));
      ResumeCase c("pause" + std::to_string(at) + (lazy ? "l" : "e"));
      c.args = {"--mb", "32", "--steps", "12", "--pause-at", std::to_string(at)};
      c.checkpoint_extra = {"--signal-at", std::to_string(at)};
      c.input = "y";
      c.lazy = lazy;
      c.run_and_compare();
      // Pages the monitor served from the image, by fault or by the background fill (which of
      // the two got a page first is up to the scheduler).
      const long served = c.resumed_data_pages() + c.resumed_field("prefetched");
      if (lazy) {
        EXPECT_GT(served, 0) << c.resumed.err;
      } else {
        EXPECT_EQ(served, 0) << c.resumed.err;
      }
    }
  }
}

TEST(Resume, ForkAfterALazyResumeGivesTheChildEveryPage) {
  ResumeCase c("fork");
  c.args = {"--mb", "32", "--steps", "6", "--threads", "2", "--pause-at", "1", "--fork"};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.input = "y";
  c.run_and_compare();
  EXPECT_NE(c.resumed.out.find("child status 0\n"), std::string::npos) << c.resumed.out;
  EXPECT_NE(summary_line(c.resumed.err).find("fork=1"), std::string::npos) << c.resumed.err;
}

TEST(Resume, ASignalPendingAtTheCheckpointIsDeliveredAfterTheResume) {
  ResumeCase c("pending");
  c.args = {"--mb", "8", "--steps", "5", "--pause-at", "2", "--pending"};
  c.checkpoint_extra = {"--signal-at", "2"};
  c.input = "y";
  c.run_and_compare();
  EXPECT_NE(c.expected.out.find("usr1 after the read 1\n"), std::string::npos) << c.expected.out;
}

TEST(Resume, SharedAndPrivateFileMappings) {
  for (bool lazy : {true, false}) {
    SCOPED_TRACE(lazy ? "lazy" : "eager");
    ResumeCase c(lazy ? "mappedl" : "mappede");
    c.args = {"--mb", "8", "--steps", "10", "--pause-at", "4"};
    c.checkpoint_extra = {"--signal-at", "4"};
    c.input = "y";
    c.mapped = true;
    c.lazy = lazy;
    c.run_and_compare();
    EXPECT_NE(c.resumed.out.find("\nmapped "), std::string::npos) << c.resumed.out;
  }
}

TEST(Resume, ManyThreadsStoppedInBarriers) {
  for (int at : {1, 6}) {
    SCOPED_TRACE("pause at step " + std::to_string(at));
    ResumeCase c("threads" + std::to_string(at));
    c.args = {"--mb", "32", "--steps", "8", "--threads", "6", "--pause-at", std::to_string(at)};
    c.checkpoint_extra = {"--signal-at", std::to_string(at)};
    c.input = "y";
    c.run_and_compare();
    // The program's threads: main and its 6 workers (the shim's monitor and checkpoint thread are
    // not the program's).
    EXPECT_NE(c.checkpoint.err.find(" 7 threads,"), std::string::npos) << c.checkpoint.err;
  }
}

TEST(Resume, CheckpointAfterADelayMidComputation) {
  for (bool lazy : {true, false}) {
    SCOPED_TRACE(lazy ? "lazy" : "eager");
    ResumeCase c(lazy ? "delayl" : "delaye");
    c.args = {"--mb", "32", "--steps", "30", "--threads", "2", "--slow-ms", "20"};
    c.at = "after=0.25";
    c.lazy = lazy;
    c.run_and_compare();
  }
}

TEST(Resume, CheckpointDuringSleepsDoesNotCutThemShort) {
  ResumeCase c("naps");
  c.args = {"--mb", "16", "--steps", "16", "--nap-ms", "20"};
  c.at = "after=0.15";
  c.run_and_compare();
  EXPECT_EQ(c.expected.out.find("nap -1"), std::string::npos) << c.expected.out;
}

TEST(Resume, ExitStatusIsTheProgramsAndCallerDescriptorsDoNotLeak) {
  ResumeCase c("status");
  c.args = {"--mb", "16", "--steps", "6", "--pause-at", "2", "--list-fds", "--exit", "7"};
  c.checkpoint_extra = {"--signal-at", "2"};
  c.input = "y";
  c.expected_status = 7;
  // The resumer holds descriptors of its own (3, 5, 8 and 9); none may reach the program, which
  // had its log and data files at 3 and 4.
  c.resume_wrapper = {"/bin/sh", "-c", "exec 3</dev/null 5</dev/null 8>/dev/null 9</dev/null; exec \"$@\"", "sh"};
  c.run_and_compare();
  EXPECT_NE(c.resumed.out.find("fds 3 4\n"), std::string::npos) << c.resumed.out;
}

TEST(Resume, ContinueModeKeepsRunningAndTheImageResumesToo) {
  ResumeCase c("continue");
  c.args = {"--mb", "16", "--steps", "20", "--slow-ms", "10"};
  c.at = "after=0.1";
  c.then = "continue";
  c.reference();
  c.take_checkpoint();
  // The checkpointed run went on to the end, undisturbed.
  EXPECT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  EXPECT_EQ(c.checkpoint.out, c.expected.out);
  EXPECT_EQ(read_file(c.dir + "/data"), read_file(c.dir + "/ref-data"));
  // Its output was still buffered at the checkpoint: the resumed copy prints all of it again, and
  // writes the same data at the same offsets.
  c.resume();
  EXPECT_EQ(c.resumed.exit_code, 0) << c.resumed.err;
  EXPECT_EQ(c.resumed.out, c.expected.out);
  EXPECT_EQ(read_file(c.dir + "/data"), read_file(c.dir + "/ref-data"));
}

TEST(Resume, ThreeGenerationsPagesNeverServedComeFromTheFirstImage) {
  ResumeCase c("chain");
  c.args = {"--mb", "64", "--steps", "10", "--threads", "2", "--pause-at", "2", "--pause-at", "6"};
  c.checkpoint_extra = {"--signal-at", "2", "--signal-at", "6"};
  c.input = "yz";
  c.reference();
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  // Generation 2: resumed lazily, serves a few pages, and is checkpointed again at step 6.
  const std::string second = c.dir + "/img2";
  ProcessResult g2 = run_process({cli_path(), "resume", c.image, "--stats", "--checkpoint-to", second},
                                 with_input("y", /*keep_open=*/true));
  ASSERT_EQ(g2.exit_code, 0) << g2.err;
  EXPECT_NE(g2.err.find("checkpoint " + second + " written"), std::string::npos) << g2.err;
  // Generation 3 finishes the run.
  ProcessResult g3 = run_process({cli_path(), "resume", second, "--stats"}, with_input("z", false));
  EXPECT_EQ(g3.exit_code, 0) << g3.err;
  EXPECT_EQ(c.checkpoint.out + g2.out + g3.out, c.expected.out);
  EXPECT_EQ(read_file(c.dir + "/log"), read_file(c.dir + "/ref-log"));
  EXPECT_EQ(read_file(c.dir + "/data"), read_file(c.dir + "/ref-data"));
}

// The "done ... checksum X" a sparse_reservation run prints on stderr.
std::string sparse_checksum(const std::string& err) {
  const size_t at = err.find("checksum ");
  return at == std::string::npos ? "" : err.substr(at, err.find('\n', at) - at);
}

TEST(Resume, ALargeReservationWithFewPagesMakesASmallImage) {
  // 64 GiB reserved, 3 pages written: the image holds those pages (and the process's others),
  // not an entry per page of the reservation (16 bytes each: 256 MiB before format 2.0).
  TempDir tmp;
  const std::string image = tmp.file("sparse.img");
  std::vector<std::string> program = {target_path("sparse_reservation"), "--gib", "64", "--touch", "3"};
  ProcessResult ref = run_process(program, with_input("go\n", false));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  ASSERT_NE(sparse_checksum(ref.err), "") << ref.err;
  for (const char* prot : {"rw", "none"}) {
    SCOPED_TRACE(std::string("--prot ") + prot);
    std::vector<std::string> checkpoint = {cli_path(), "checkpoint", "-o", image, "--"};
    checkpoint.insert(checkpoint.end(), program.begin(), program.end());
    checkpoint.insert(checkpoint.end(), {"--prot", prot, "--checkpoint"});
    ProcessResult c = run_process(checkpoint, with_input("", true));
    ASSERT_EQ(c.exit_code, 0) << c.err;
    struct stat st;
    ASSERT_EQ(stat(image.c_str(), &st), 0);
    EXPECT_LT(st.st_size, 2 << 20);
    ProcessResult json = run_process({cli_path(), "inspect", "--json", image});
    EXPECT_NE(json.out.find("\"pages\":16777216,\"runs\":"), std::string::npos) << json.out;
    for (bool lazy : {true, false}) {
      std::vector<std::string> resume = {cli_path(), "resume", image};
      if (!lazy) resume.push_back("--eager");
      ProcessResult r = run_process(resume, with_input("go\n", false));
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(sparse_checksum(r.err), sparse_checksum(ref.err)) << r.err;
    }
  }
}

// What the image of sparse_reservation --gib 10 --touch 2 must stay under: 1.1 x the 127,514 bytes
// of CRIU 4.2's images of the same program without the shim, on this machine (bench/RESUME_RESULTS.md,
// "Side by side with CRIU"): issue 15's goal. Format 2.1 makes 116,584 bytes.
constexpr off_t kSparseImageBound = 140265;

// The number after "KEY": in a JSON text (0 when absent).
uint64_t json_number(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":");
  return at == std::string::npos ? 0 : std::stoull(json.substr(at + key.size() + 3));
}

TEST(Resume, TenGibReservationWithTwoPagesFitsAFixedSmallBound) {
  // Issue 15's sparse-image case: 10 GiB reserved, 2 pages written. The image holds the process's
  // own pages (the program's, libc's, the shim's: 92 pages, 405,800 bytes in format 2.0), the
  // mostly zero ones packed. The bound is on bytes, not time: what the image holds does not depend
  // on the host's speed. Resumed lazily and eagerly, and compacted, the two pages are as they were.
  TempDir tmp;
  const std::string image = tmp.file("sparse.img");
  std::vector<std::string> program = {target_path("sparse_reservation"), "--gib", "10", "--touch", "2"};
  ProcessResult ref = run_process(program, with_input("go\n", false));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  ASSERT_NE(sparse_checksum(ref.err), "") << ref.err;
  std::vector<std::string> checkpoint = {cli_path(), "checkpoint", "-o", image, "--"};
  checkpoint.insert(checkpoint.end(), program.begin(), program.end());
  checkpoint.push_back("--checkpoint");
  ProcessResult c = run_process(checkpoint, with_input("", true));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  struct stat st;
  ASSERT_EQ(stat(image.c_str(), &st), 0);
  EXPECT_LT(st.st_size, kSparseImageBound) << c.err;
  ProcessResult json = run_process({cli_path(), "inspect", "--json", image});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_GT(json_number(json.out, "packed_pages"), 20u) << json.out;
  EXPECT_EQ(json_number(json.out, "file_size"), uint64_t(st.st_size));
  ProcessResult verify = run_process({cli_path(), "verify", image});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  const std::string compacted = tmp.file("compact.img");
  ProcessResult compact = run_process({cli_path(), "compact", image, "-o", compacted});
  ASSERT_EQ(compact.exit_code, 0) << compact.err;
  for (const std::string& img : {image, compacted}) {
    for (bool lazy : {true, false}) {
      SCOPED_TRACE(img + (lazy ? " lazy" : " eager"));
      std::vector<std::string> resume = {cli_path(), "resume", img};
      if (!lazy) resume.push_back("--eager");
      ProcessResult r = run_process(resume, with_input("go\n", false));
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(sparse_checksum(r.err), sparse_checksum(ref.err)) << r.err;
    }
  }
  ProcessResult inspect = run_process({cli_path(), "inspect", image});
  EXPECT_NE(inspect.out.find("packed "), std::string::npos) << inspect.out;
  // A byte of a packed page changed: refused before the program runs (exit 2), never resumed
  // with the wrong byte.
  std::string bytes = read_file(image);
  snap::FileHeader h;
  ASSERT_GE(bytes.size(), sizeof h);
  memcpy(&h, bytes.data(), sizeof h);
  uint64_t packed_at = 0;
  for (uint32_t i = 0; i < h.section_count; i++) {
    snap::SectionEntry e;
    memcpy(&e, bytes.data() + h.section_table_offset + uint64_t(i) * h.section_entry_size, sizeof e);
    if (e.type == uint32_t(snap::SectionType::kPacked)) packed_at = e.offset;
  }
  ASSERT_NE(packed_at, 0u);
  bytes[packed_at + 16] ^= 1;  // the first span's first byte
  const std::string damaged = tmp.file("damaged.img");
  {
    std::ofstream f(damaged, std::ios::binary);
    f << bytes;
  }
  chmod(damaged.c_str(), 0600);
  ProcessResult bad = run_process({cli_path(), "resume", damaged}, with_input("go\n", false));
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_EQ(bad.err.find("running "), std::string::npos) << bad.err;
}

// CPython with three threads blocked on a queue and a few hundred MB of objects, checkpointed in
// its read of stdin: resumed lazily and eagerly it prints and writes what it prints and writes
// without the checkpoint.
TEST(Resume, Python3SessionWithThreads) {
  const std::string python = "/usr/bin/python3";
  ASSERT_EQ(access(python.c_str(), X_OK), 0);
  const std::string script = std::string(UFFDLAZY_SOURCE_DIR) + "/tests/data/resume/python_session.py";
  TempDir tmp;
  RunOptions ref = with_input("go\n", false);
  ref.close_inherited_fds = true;
  ref.env["PYTHONHASHSEED"] = "0";
  ProcessResult expected = run_process({python, "-I", script, tmp.file("ref.json")}, ref);
  ASSERT_EQ(expected.exit_code, 0) << expected.err;
  for (bool lazy : {true, false}) {
    SCOPED_TRACE(lazy ? "lazy" : "eager");
    const std::string image = tmp.file(lazy ? "lazy.img" : "eager.img");
    const std::string out = tmp.file(lazy ? "lazy.json" : "eager.json");
    RunOptions ck = with_input("", true);
    ck.env["PYTHONHASHSEED"] = "0";
    ck.env["CHECKPOINT_HERE"] = "1";
    ProcessResult c = run_process({cli_path(), "checkpoint", "-o", image, "--", python, "-I", script, out}, ck);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    std::vector<std::string> resume = {cli_path(), "resume", image, "--stats"};
    if (!lazy) resume.push_back("--eager");
    ProcessResult r = run_process(resume, with_input("go\n", false));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(c.out + r.out, expected.out) << r.err;
    EXPECT_EQ(read_file(out), read_file(tmp.file("ref.json")));
    if (lazy) {
      // Served from the image by the monitor: on a fault, or by the background fill first.
      const std::string line = summary_line(r.err);
      EXPECT_GT(summary_field(line, "data_pages") + summary_field(line, "prefetched"), 1000) << r.err;
    }
  }
}

// A program that ends the moment it is resumed exits with its own status, 0: not the status of a
// checkpoint that was never taken.
TEST(Resume, AProgramThatEndsAtOnceExitsZero) {
  ResumeCase c("quick");
  c.args = {"--mb", "1", "--steps", "1", "--pause-at", "0"};
  c.checkpoint_extra = {"--signal-at", "0"};
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  for (int i = 0; i < 8; i++) {
    ProcessResult r = run_process({cli_path(), "resume", c.image}, with_input("y", false));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
  }
}

TEST(Resume, ImageIsPrivateAndVerifies) {
  ResumeCase c("mode");
  c.args = {"--mb", "8", "--steps", "3", "--pause-at", "1"};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  struct stat st;
  ASSERT_EQ(stat(c.image.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ProcessResult v = run_process({cli_path(), "verify", c.image});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// "resume_target: resident N of M pages after T ms" on the resumed run's stderr.
struct Resident {
  long n = -1, of = -1, ms = -1;
};
Resident resident_line(const std::string& err) {
  Resident r;
  const size_t p = err.find("resume_target: resident ");
  if (p != std::string::npos) {
    std::sscanf(err.c_str() + p, "resume_target: resident %ld of %ld pages after %ld ms", &r.n, &r.of, &r.ms);
  }
  return r;
}

// Prefetch after a resume: the resume call's UFFDLAZY_PREFETCH (default all) governs the resumed
// monitor, whatever the checkpointed process had.
TEST(Resume, PrefetchAllByDefaultPutsEveryPageInPlaceInTheBackground) {
  ResumeCase c("prefetch-all");
  // The program waits (touching nothing) until every page of its 64 MiB array is resident.
  c.args = {"--mb", "64", "--steps", "4", "--pause-at", "1", "--resident-wait-ms", "30000", "--sum-all"};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.input = "y";
  c.run_and_compare();  // every page's content equals the uninterrupted run's (the array sum)
  const Resident r = resident_line(c.resumed.err);
  EXPECT_GT(r.of, 16000) << c.resumed.err;
  EXPECT_EQ(r.n, r.of) << c.resumed.err;
  EXPECT_GT(c.resumed_field("prefetched"), 16000) << c.resumed.err;
  // --stats: how long the resume took, and when the fill was done.
  EXPECT_NE(c.resumed.err.find(" after launch (lazy), "), std::string::npos) << c.resumed.err;
  EXPECT_NE(c.resumed.err.find("; all in place "), std::string::npos) << c.resumed.err;
  EXPECT_EQ(count_of(c.resumed.err, "uffdlazy: resume: running "), 1u) << c.resumed.err;
}

TEST(Resume, PrefetchNoneInstallsNothingBeyondFaultsAndReadahead) {
  for (bool option : {false, true}) {
    SCOPED_TRACE(option ? "--prefetch none" : "UFFDLAZY_PREFETCH=none");
    ResumeCase c(option ? "prefetch-none-opt" : "prefetch-none");
    c.args = {"--mb", "64", "--steps", "4", "--pause-at", "1", "--resident-wait-ms", "400", "--sum-all"};
    c.checkpoint_extra = {"--signal-at", "1"};
    c.input = "y";
    // The checkpointed process ran with the default (all): the resume call's setting wins.
    if (option) {
      c.resume_options = {"--prefetch", "none"};
      c.resume_env = {{"UFFDLAZY_PREFETCH", "all"}};  // the option wins over the variable
    } else {
      c.resume_env = {{"UFFDLAZY_PREFETCH", "none"}};
    }
    c.run_and_compare();
    EXPECT_EQ(c.resumed_field("prefetched"), 0) << c.resumed.err;
    EXPECT_GT(c.resumed_data_pages(), 16000) << c.resumed.err;  // --sum-all faulted them in
    const Resident r = resident_line(c.resumed.err);
    EXPECT_GT(r.of, 16000) << c.resumed.err;
    EXPECT_LT(r.n, r.of / 2) << c.resumed.err;
    EXPECT_EQ(c.resumed.err.find("; all in place "), std::string::npos) << c.resumed.err;
  }
}

TEST(Resume, APageDroppedAfterTheResumeReadsZerosWhileTheFillRuns) {
  ResumeCase c("prefetch-drop");
  // Right after the resume, 16 pages of every 4 MiB of the array are dropped (MADV_DONTNEED) while
  // the fill goes over the array; once every other page is resident, the dropped ones must read
  // zeros, as in the uninterrupted run.
  c.args = {"--mb", "128", "--steps", "4", "--pause-at", "1", "--drop-at", "1", "--resident-wait-ms", "30000",
            "--sum-all"};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.input = "y";
  c.resume_env = {{"UFFDLAZY_READAHEAD", "1"}};  // only the fill brings pages in ahead
  c.run_and_compare();
  EXPECT_NE(c.expected.out.find("dropped 512 pages, 512 read zeros\n"), std::string::npos) << c.expected.out;
  EXPECT_GT(c.resumed_field("prefetched"), 16000) << c.resumed.err;
  EXPECT_GE(c.resumed_field("remove"), 32) << c.resumed.err;
  const Resident r = resident_line(c.resumed.err);
  EXPECT_EQ(r.n, r.of) << c.resumed.err;
  // Some dropped pages were still to be filled when they were dropped (the fill had not reached
  // them): the owed bitmap, not luck, kept their old content out.
  long ahead = -1;
  const size_t p = c.resumed.err.find("resume_target: dropped 512 pages, ");
  ASSERT_NE(p, std::string::npos) << c.resumed.err;
  std::sscanf(c.resumed.err.c_str() + p, "resume_target: dropped 512 pages, %ld not yet resident", &ahead);
  EXPECT_GT(ahead, 0) << c.resumed.err;
}

TEST(Resume, ReportFileIsJsonWithTheFaults) {
  ResumeCase c("report");
  c.args = {"--mb", "16", "--steps", "4", "--pause-at", "1", "--sum-all"};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.input = "y";
  const std::string json = c.dir + "/report.json";
  c.resume_options = {"--report", json, "--readahead", "1"};
  c.resume_env = {{"UFFDLAZY_PREFETCH", "none"}};
  c.run_and_compare();
  report::Report rep;
  std::string error;
  ASSERT_TRUE(report::load_report(json, &rep, &error)) << error << "\n" << read_file(json);
  EXPECT_EQ(rep.version, 1u);
  EXPECT_EQ(rep.page_size, uint64_t(sysconf(_SC_PAGESIZE)));
  // One page per fault (readahead 1, no prefetch): the report counts what the summary counts.
  const long served = c.resumed_field("faults");
  EXPECT_GT(served, 4000) << c.resumed.err;
  EXPECT_EQ(rep.total("pages_served"), uint64_t(served));
  EXPECT_EQ(rep.total("snapshot_pages"), uint64_t(c.resumed_data_pages()));
  EXPECT_GT(rep.latency.count, 4000u);
  EXPECT_FALSE(rep.regions.empty());
}

}  // namespace
}  // namespace uffdlazy::test

namespace uffdlazy::test {
namespace {

// Zombie children: a parent forks children that end (one killed by a signal) and reaps them one by
// one, at steps and at the end. Checkpointed with all of them zombies, with some reaped, and with
// one left, the resumed parent's waitpid and wait return each child's status, and the pid fork
// returned, exactly as an uninterrupted run; kill(pid, 0) still finds the zombie.
TEST(ResumeTrees, ZombieChildrenAreWaitedForAfterTheResume) {
  for (int at : {0, 2, 4}) {
    for (bool lazy : {true, false}) {
      if (!lazy && at != 2) continue;
      SCOPED_TRACE("checkpoint at step " + std::to_string(at) + (lazy ? ", lazy" : ", eager"));
      ResumeCase c("zombies" + std::to_string(at) + (lazy ? "l" : "e"));
      c.args = {"--mb", "8", "--steps", "5", "--pause-at", std::to_string(at), "--zombies", "4"};
      c.checkpoint_extra = {"--signal-at", std::to_string(at)};
      c.input = "y";
      c.lazy = lazy;
      c.run_and_compare();
      EXPECT_NE(c.expected.out.find("child 0 exited "), std::string::npos) << c.expected.out;
      EXPECT_NE(c.expected.out.find("child 2 killed 15 same-pid 1\n"), std::string::npos) << c.expected.out;
      EXPECT_NE(c.expected.out.find("kill 0; child 3 exited "), std::string::npos) << c.expected.out;
      EXPECT_NE(c.expected.out.find("wait again -1 ECHILD\n"), std::string::npos) << c.expected.out;
      EXPECT_EQ(c.expected.out.find("same-pid 0"), std::string::npos) << c.expected.out;
    }
  }
}

// A process tree: a parent with forked workers, each with 4 MiB of its own memory, waiting for a
// signal, and zombies beside them. The checkpoint stops every process at one instant and writes an
// image per process (IMG and IMG.PID); the resume makes the tree again (each worker's memory
// served by its own monitor, from its own image), and the parent's kill and waitpid reach each worker by the pid fork returned.
TEST(ResumeTrees, ForkedWorkersAreCheckpointedWithTheirParent) {
  for (int at : {0, 2, 4}) {
    for (bool lazy : {true, false}) {
      if (!lazy && at != 2) continue;
      SCOPED_TRACE("checkpoint at step " + std::to_string(at) + (lazy ? ", lazy" : ", eager"));
      ResumeCase c("workers" + std::to_string(at) + (lazy ? "l" : "e"));
      c.args = {"--mb", "8", "--steps", "5", "--pause-at", std::to_string(at), "--workers", "3", "--zombies", "4"};
      c.checkpoint_extra = {"--signal-at", std::to_string(at)};
      c.input = "y";
      c.lazy = lazy;
      c.run_and_compare();
      EXPECT_NE(c.expected.out.find("worker 2 kill 0 exited "), std::string::npos) << c.expected.out;
      EXPECT_EQ(c.expected.out.find("same-pid 0"), std::string::npos) << c.expected.out;
      EXPECT_EQ(count_of(c.checkpoint.err, " written: "), 4u) << c.checkpoint.err;
    }
  }
}

// A tree resumes whole or not at all. Here each worker maps a file the parent does not, and the
// file changes after the checkpoint: the workers' restorers refuse (a line naming the file), and
// the parent, whose own image is fine, never runs an instruction of the program either:
// no output, status 2, no process of the tree left. Without the barrier the parent ran on and
// reaped workers that had ended with status 2.
TEST(ResumeTrees, AMemberThatRefusesStopsTheWholeTree) {
  ResumeCase c("workers-refused");
  const std::string shared_file = c.dir + "/worker-map";
  write_file(shared_file, std::string(4096, 'w'));
  c.args = {"--mb", "4", "--steps", "3", "--pause-at", "1", "--workers", "2", "--worker-maps", shared_file};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.input = "y";
  c.reference();
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  ASSERT_EQ(count_of(c.checkpoint.err, " written: "), 3u) << c.checkpoint.err;
  // Another file under the name (the old one kept, so its inode number cannot come back).
  ASSERT_EQ(rename(shared_file.c_str(), (shared_file + ".old").c_str()), 0);
  write_file(shared_file, std::string(4096, 'v'));
  c.resume();
  EXPECT_EQ(c.resumed.exit_code, 2) << c.resumed.err;
  EXPECT_EQ(c.resumed.out, "");
  // One line from each worker that got as far as its check before the tree ended (the first
  // refusal ends the others, wherever they are): at least one, and nothing else.
  const size_t lines = count_of(c.resumed.err, "\n");
  EXPECT_GE(lines, 1u);
  EXPECT_EQ(count_of(c.resumed.err, "the mapped file " + shared_file + " changed since the checkpoint\n"), lines)
      << c.resumed.err;
  // Every process of the tree ends: none is left running the restorer or the program.
  bool left = true;
  for (int i = 0; i < 2000 && left; i++) {
    left = false;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(e.path().string() + "/cmdline");  // gone meanwhile: empty
      const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(c.image) != std::string::npos) left = true;
    }
    if (left) usleep(10000);
  }
  EXPECT_FALSE(left) << "a process of the refused tree is still there";
}

// --then continue with running children is not built yet: refused with one line, the program
// runs on to the same end, and no image (nor any member's) is left.
TEST(ResumeTrees, ContinueModeWithRunningChildrenIsRefused) {
  ResumeCase c("workers-continue");
  // Slow steps after the signal: the refusal comes from the checkpoint thread, which the program
  // must not outrun to its end (continue mode cannot wait for input here).
  c.args = {"--mb", "4", "--steps", "3", "--workers", "2", "--slow-ms", "500"};
  c.checkpoint_extra = {"--signal-at", "1"};
  c.then = "continue";
  c.reference();
  c.take_checkpoint();
  EXPECT_EQ(c.checkpoint.exit_code, 2) << c.checkpoint.err;
  EXPECT_NE(c.checkpoint.err.find("uffdlazy: checkpoint " + c.image +
                                  ": refused: the process has child processes still running; a checkpoint of a "
                                  "process tree is taken with --then stop only\n"),
            std::string::npos)
      << c.checkpoint.err;
  EXPECT_EQ(c.checkpoint.out, c.expected.out);
  for (const std::string& f : c.tmp->list()) EXPECT_EQ(f.find(".img"), std::string::npos) << f;
}

// A resumed process with a zombie child is checkpointed again: the second image records the child
// under the pid the program knows (the first one), and the third generation's wait still returns it.
TEST(ResumeTrees, AZombieKeepsThePidTheProgramKnowsAcrossGenerations) {
  ResumeCase c("zombie-chain");
  c.args = {"--mb", "8", "--steps", "5", "--pause-at", "0", "--pause-at", "3", "--zombies", "4"};
  c.checkpoint_extra = {"--signal-at", "0", "--signal-at", "3"};
  c.input = "yz";
  c.reference();
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  const std::string second = c.dir + "/img2";
  ProcessResult g2 = run_process({cli_path(), "resume", c.image, "--checkpoint-to", second},
                                 with_input("y", /*keep_open=*/true));
  ASSERT_EQ(g2.exit_code, 0) << g2.err;
  EXPECT_NE(g2.err.find("checkpoint " + second + " written"), std::string::npos) << g2.err;
  ProcessResult first = run_process({cli_path(), "inspect", c.image});
  ProcessResult again = run_process({cli_path(), "inspect", second});
  const size_t at = first.out.find("zombie child");
  ASSERT_NE(at, std::string::npos) << first.out;
  // The last child, the one still a zombie at the second checkpoint.
  const size_t last = first.out.rfind("pid ");
  const std::string line = first.out.substr(last, first.out.find('\n', last) - last);
  EXPECT_EQ(count_of(again.out, "zombie child"), 1u) << again.out;
  EXPECT_NE(again.out.find(line), std::string::npos) << line << "\n" << again.out;
  ProcessResult g3 = run_process({cli_path(), "resume", second}, with_input("z", false));
  EXPECT_EQ(g3.exit_code, 0) << g3.err;
  EXPECT_EQ(c.checkpoint.out + g2.out + g3.out, c.expected.out);
  EXPECT_NE(c.expected.out.find("kill 0; child 3 exited "), std::string::npos) << c.expected.out;
}

// The kernel objects a program holds (tests/targets/lib/held_objects.h), each with data in flight
// at the checkpoint: checkpointed at several steps and resumed, the program prints and writes
// exactly what an uninterrupted run does.
void objects_resume(const std::string& name, const std::string& list, std::initializer_list<int> pauses,
                    bool eager = false) {
  for (int at : pauses) {
    SCOPED_TRACE(list + ", checkpointed at step " + std::to_string(at) + (eager ? ", eager" : ""));
    ResumeCase c(name + std::to_string(at));
    c.args = {"--mb", "4", "--steps", "5", "--pause-at", std::to_string(at), "--objects", list};
    c.checkpoint_extra = {"--signal-at", std::to_string(at)};
    c.input = "y";
    c.lazy = !eager;
    c.run_and_compare();
    EXPECT_NE(c.expected.out.find("step 4 sum"), std::string::npos) << c.expected.out;
  }
}

TEST(ResumeObjects, PipesFifosEventfdsAndEpoll) { objects_resume("pipes", "pipe,fifo,eventfd,epoll", {0, 3}); }

TEST(ResumeObjects, UnixSocketsWithTheirQueues) {
  objects_resume("unix", "stream,seqpacket,dgram,listen,closed-peer", {0, 3});
}

// A named datagram socket that others connected to is established with no peer of its own: it
// stays unconnected, so new sockets connect to it after the resume (zdtm sockets_dgram,
// socket_dgram_data, socket_close_data01 got EPERM).
TEST(ResumeObjects, ADatagramSocketOthersConnectToTakesNewConnections) {
  objects_resume("dgram-server", "dgram-server,dgram", {0, 3});
}

TEST(ResumeObjects, TcpListenerAndUdpSocketKeepTheirAddresses) { objects_resume("ip", "tcp,udp", {1}); }

TEST(ResumeObjects, SignalfdTimerfdInotifyAndPosixTimers) {
  objects_resume("timers", "signalfd,timerfd,inotify,posix-timer", {0, 3});
}

TEST(ResumeObjects, DeletedFilesMemfdsAndADeletedWorkingDirectory) {
  objects_resume("deleted", "ghost,memfd,mapped-only,deleted-cwd,proc-self", {0, 3});
}

TEST(ResumeObjects, SharedMemoryAndForkAdvice) {
  objects_resume("shared", "shared-anon,sysv,dontfork,advice", {0, 3});
  objects_resume("shared-eager", "shared-anon,sysv,dontfork,advice", {2}, /*eager=*/true);
}

TEST(ResumeObjects, EveryKindTogetherEagerly) {
  objects_resume("all",
                 "pipe,fifo,eventfd,epoll,stream,seqpacket,dgram,listen,closed-peer,tcp,udp,signalfd,timerfd,inotify,"
                 "posix-timer,ghost,memfd,mapped-only,shared-anon,sysv,dontfork,deleted-cwd,advice,proc-self",
                 {2}, /*eager=*/true);
}

// The checkpoint copies what is in flight without taking it: in continue mode the program reads
// every byte it would have read, and the image resumes too.
TEST(ResumeObjects, ContinueModeTakesNothingFromTheProgram) {
  ResumeCase c("objects-continue");
  // Not inotify: a checkpoint that lands between a step's file event and its read is refused
  // (events not read yet), and after=0.1 lands anywhere.
  c.args = {"--mb", "4", "--steps", "20", "--slow-ms", "10", "--objects",
            "pipe,fifo,eventfd,epoll,stream,seqpacket,dgram,listen,closed-peer,tcp,udp,signalfd,timerfd,"
            "posix-timer,ghost,memfd,mapped-only,shared-anon,sysv"};
  c.at = "after=0.1";
  c.then = "continue";
  c.reference();
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  ASSERT_NE(c.checkpoint.err.find("checkpoint " + c.image + " written"), std::string::npos) << c.checkpoint.err;
  EXPECT_EQ(c.checkpoint.out, c.expected.out);
  c.resume();
  EXPECT_EQ(c.resumed.exit_code, 0) << c.resumed.err;
  EXPECT_EQ(c.resumed.out, c.expected.out);
}

}  // namespace
}  // namespace uffdlazy::test
