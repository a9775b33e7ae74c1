// Process state at the edges of a checkpoint and a resume (tests/targets/process_edges.cpp): what
// is brought back is exactly what an uninterrupted run has; what cannot be is refused with one
// line, and nothing is left behind.
#include <gtest/gtest.h>
#include <cerrno>
#include <cstring>
#include <functional>

#include <map>
#include <string>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/format.h"
#include "core/snapshot/process_format.h"
#include "tests/e2e/process_runner.h"
#include "tests/e2e/resume_test_util.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

struct EdgeRun {
  ProcessResult expected, checkpoint, resumed;
};

RunOptions input(const std::string& data, bool keep_open) {
  RunOptions o = with_input(data, keep_open);
  o.timeout_seconds = 60;
  return o;
}

// The reference run, the checkpoint (stop mode) and the resume of `mode`.
// env: added to the environment of the program's two runs.
EdgeRun checkpoint_and_resume(const TempDir& tmp, const std::string& mode, const std::vector<std::string>& resume_extra = {},
                              const std::map<std::string, std::string>& env = {}) {
  EdgeRun r;
  RunOptions ref = input("y", false);
  ref.close_inherited_fds = true;
  ref.env = env;
  r.expected = run_process({target_path("process_edges"), mode}, ref);
  const std::string image = tmp.file(mode + ".img");
  RunOptions checkpointed = input("", true);
  checkpointed.env = env;
  r.checkpoint = run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("process_edges"), mode, "--trigger"},
                             checkpointed);
  if (r.checkpoint.exit_code != 0) return r;
  std::vector<std::string> argv = resume_extra;
  argv.insert(argv.end(), {cli_path(), "resume", image});
  r.resumed = run_process(argv, input("y", false));
  return r;
}

TEST(CheckpointEdges, APageMadeInaccessibleInsideALazyMappingKeepsItsData) {
  TempDir tmp;
  const EdgeRun r = checkpoint_and_resume(tmp, "prot-none");
  ASSERT_EQ(r.expected.exit_code, 0) << r.expected.err;
  ASSERT_EQ(r.checkpoint.exit_code, 0) << r.checkpoint.err;
  EXPECT_NE(r.checkpoint.err.find(" written: "), std::string::npos) << r.checkpoint.err;
  EXPECT_EQ(r.resumed.exit_code, 0) << r.resumed.err;
  EXPECT_EQ(r.checkpoint.out + r.resumed.out, r.expected.out) << r.resumed.err;
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"prot-none.img"});
}

// A lazy resume maps the image inside the program's own address-space limit: with no room for it
// the resume is eager, says so, and the program runs as without the checkpoint.
TEST(CheckpointEdges, ALazyResumeUnderAnAddressSpaceLimitWithoutRoomIsEager) {
  TempDir tmp;
  const EdgeRun r = checkpoint_and_resume(tmp, "rlimit-as");
  ASSERT_EQ(r.expected.exit_code, 0) << r.expected.err;
  ASSERT_EQ(r.checkpoint.exit_code, 0) << r.checkpoint.err;
  EXPECT_EQ(r.resumed.exit_code, 0) << r.resumed.err;
  EXPECT_EQ(r.resumed.signal, 0) << r.resumed.err;
  EXPECT_EQ(r.checkpoint.out + r.resumed.out, r.expected.out) << r.resumed.err;
  EXPECT_NE(r.resumed.err.find("address-space limit (RLIMIT_AS, "), std::string::npos) << r.resumed.err;
  EXPECT_NE(r.resumed.err.find("; resuming eagerly"), std::string::npos) << r.resumed.err;
}

// A copy of `from` at `to` whose process record `change` edited, every checksum made right again
// (section, section table, header): only the reader's own checks can refuse it.
void patch_process_record(const std::string& from, const std::string& to,
                          const std::function<void(snap::ProcessRecord*)>& change) {
  std::string f = read_file(from);
  snap::FileHeader h;
  memcpy(&h, f.data(), sizeof h);
  for (uint32_t i = 0; i < h.section_count; i++) {
    const size_t at = h.section_table_offset + size_t(i) * h.section_entry_size;
    snap::SectionEntry e;
    memcpy(&e, f.data() + at, sizeof e);
    if (e.type != uint32_t(snap::ProcessSection::kProcess)) continue;
    snap::ProcessRecord p;
    memcpy(&p, f.data() + e.offset + sizeof(snap::TableHeader), sizeof p);
    change(&p);
    memcpy(f.data() + e.offset + sizeof(snap::TableHeader), &p, sizeof p);
    e.checksum = snap::checksum(f.data() + e.offset, e.length);
    memcpy(f.data() + at, &e, sizeof e);
  }
  h.section_table_checksum = snap::checksum(f.data() + h.section_table_offset, size_t(h.section_count) * h.section_entry_size);
  memcpy(f.data(), &h, sizeof h);
  h.header_checksum = snap::checksum_with_zeroed_u64(f.data(), h.header_size, offsetof(snap::FileHeader, header_checksum));
  memcpy(f.data(), &h, sizeof h);
  write_file(to, f);
}

TEST(CheckpointEdges, AnImageWhoseResumeBlockLiesOutsideEveryMappingIsRefused) {
  TempDir tmp;
  const EdgeRun r = checkpoint_and_resume(tmp, "plain");
  ASSERT_EQ(r.checkpoint.exit_code, 0) << r.checkpoint.err;
  ASSERT_EQ(r.checkpoint.out + r.resumed.out, r.expected.out) << r.resumed.err;
  const std::string bad = tmp.file("bad.img");
  patch_process_record(tmp.file("plain.img"), bad, [](snap::ProcessRecord* p) { p->resume_block = 0x7000; });
  const ProcessResult resumed = run_process({cli_path(), "resume", bad}, input("y", false));
  EXPECT_EQ(resumed.exit_code, 2) << resumed.err;
  EXPECT_EQ(resumed.signal, 0);
  EXPECT_EQ(resumed.out, "");
  EXPECT_NE(resumed.err.find("resume " + bad + ": "), std::string::npos) << resumed.err;
  EXPECT_NE(resumed.err.find("resume block lies outside the memory a resume puts in place"), std::string::npos)
      << resumed.err;
  EXPECT_EQ(count_of(resumed.err, "\n"), 1u) << resumed.err;
  const ProcessResult verify = run_process({cli_path(), "verify", bad});
  EXPECT_NE(verify.exit_code, 0) << verify.out << verify.err;
}

// The process-wide settings a program relies on are back after a resume: THP disabled, a
// membarrier registration, oom_score_adj, supplementary groups, a lease.
TEST(CheckpointEdges, TheProcessSettingsAreBackAfterAResume) {
  TempDir tmp;
  const EdgeRun r = checkpoint_and_resume(tmp, "settings");
  ASSERT_EQ(r.expected.exit_code, 0) << r.expected.err;
  ASSERT_NE(r.expected.out.find("groups 1234 5678\nlease read\n"), std::string::npos) << r.expected.out;
  ASSERT_EQ(r.checkpoint.exit_code, 0) << r.checkpoint.err;
  EXPECT_EQ(r.resumed.exit_code, 0) << r.resumed.err;
  EXPECT_EQ(r.checkpoint.out + r.resumed.out, r.expected.out) << r.resumed.err;
  EXPECT_EQ(r.resumed.err, "");
}

// A restartable-sequence area the program registered itself (glibc registering none) is
// registered again at the resume.
TEST(CheckpointEdges, AnRseqAreaTheProgramRegisteredIsBackAfterAResume) {
  TempDir tmp;
  const EdgeRun r = checkpoint_and_resume(tmp, "rseq", {}, {{"GLIBC_TUNABLES", "glibc.pthread.rseq=0"}});
  ASSERT_EQ(r.expected.exit_code, 0) << r.expected.err;
  ASSERT_EQ(r.expected.out, "rseq registered\nrseq again: " + std::string(strerror(EBUSY)) + "\n");
  ASSERT_EQ(r.checkpoint.exit_code, 0) << r.checkpoint.err;
  EXPECT_EQ(r.resumed.exit_code, 0) << r.resumed.err;
  EXPECT_EQ(r.checkpoint.out + r.resumed.out, r.expected.out) << r.resumed.err;
}

// An rseq area registered by the syscall instruction itself (not through libc or syscall(2)):
// nothing can say where it lies, so the checkpoint refuses in one line, and the program goes on.
TEST(CheckpointEdges, AnRseqAreaRegisteredOutOfTheShimsSightIsRefused) {
  TempDir tmp;
  const EdgeRun r = checkpoint_and_resume(tmp, "rseq-raw", {}, {{"GLIBC_TUNABLES", "glibc.pthread.rseq=0"}});
  ASSERT_EQ(r.expected.exit_code, 0) << r.expected.err;
  EXPECT_EQ(r.checkpoint.exit_code, 2) << r.checkpoint.err;
  EXPECT_NE(r.checkpoint.err.find("registered a restartable-sequence area by a raw rseq system call"), std::string::npos)
      << r.checkpoint.err;
  EXPECT_EQ(count_of(r.checkpoint.err, "\n"), 1u) << r.checkpoint.err;
  EXPECT_EQ(tmp.list(), std::vector<std::string>{});
}

// A resume does not enter namespaces: an image from another one is refused in one line.
TEST(CheckpointEdges, AnImageFromAnotherNamespaceIsRefused) {
  TempDir tmp;
  const EdgeRun r = checkpoint_and_resume(tmp, "plain");
  ASSERT_EQ(r.checkpoint.exit_code, 0) << r.checkpoint.err;
  ASSERT_EQ(r.checkpoint.out + r.resumed.out, r.expected.out) << r.resumed.err;
  const std::string other = tmp.file("other.img");
  patch_process_record(tmp.file("plain.img"), other, [](snap::ProcessRecord* p) { p->settings.namespaces[3] = 1; });
  const ProcessResult resumed = run_process({cli_path(), "resume", other}, input("y", false));
  EXPECT_EQ(resumed.exit_code, 2) << resumed.err;
  EXPECT_EQ(resumed.out, "");
  EXPECT_NE(resumed.err.find("the process ran in another net namespace (inode 1, this is "), std::string::npos)
      << resumed.err;
  EXPECT_EQ(count_of(resumed.err, "\n"), 1u) << resumed.err;
}

}  // namespace
}  // namespace uffdlazy::test
