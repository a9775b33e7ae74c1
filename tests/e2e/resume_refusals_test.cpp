// Everything a checkpoint or a resume cannot bring back is refused with one line naming it and
// exit status 2: no image is written, no process is half resumed.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <csignal>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/format.h"
#include "core/snapshot/process_format.h"
#include "core/snapshot/process_image.h"
#include "core/snapshot/snapshot_reader.h"
#include "tests/e2e/process_runner.h"
#include "tests/e2e/resume_test_util.h"
#include "tests/e2e/snapshot_test_util.h"
#include "tools/report_json.h"

namespace uffdlazy::test {
namespace {

struct Refusal {
  const char* mode;
  const char* says;
};

TEST(CheckpointRefusal, EachUnsupportedStateIsNamedAndNoImageIsWritten) {
  const Refusal cases[] = {
      {"netlink", "descriptor 3 (a socket) is of family 16 (netlink); only unix, TCP and UDP sockets can be resumed"},
      {"pipe-outside", "descriptor 3 is a pipe whose write end another process holds"},
      {"tcp-connection", "is a TCP connection; only listening and unconnected TCP sockets can be resumed"},
      {"scm-rights", "descriptor 3 (a socket) has descriptors in flight (SCM_RIGHTS)"},
      {"inotify-queued", "descriptor 3 (inotify) has 32 bytes of events not read yet"},
      {"deleted-linked", "was deleted under this name but is still linked under another"},
      {"child", "the process has child processes the checkpoint cannot take ("},
      {"zombie-group", "has exited in a process group of its own"},
      {"zombie-clone", "has exited and reports its end with signal 23, not SIGCHLD (clone)"},
      {"sysv-kept", "is not removed (IPC_RMID): a resume could not give it its key and id back"},
      {"thread-timer", "that starts a thread (SIGEV_THREAD): glibc's helper thread for it cannot be stopped"},
      {"seccomp", "the process runs under seccomp"},
      {"blocked-signal", "threads did not stop within 2000 ms"},
      {"leader-exited", "the program's main thread has exited"},
      {"zone", "inside the range the restorer needs"},
      {"close-all", "the program closed the shim's userfaultfd"},
      // zdtm maps12: the image writer read a guard page of a file mapping and died (SIGSEGV); one
      // in anonymous memory was resumed as ordinary memory.
      {"guard-page", "a guard page (MADV_GUARD_INSTALL) at 0x"},
  };
  TempDir tmp;
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.mode);
    const std::string image = tmp.file(std::string(c.mode) + ".img");
    ProcessResult r = run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("checkpoint_refusals"), c.mode},
                                  with_input("", true));
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find("uffdlazy: checkpoint " + image + ": refused: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(count_of(r.err, "\n"), 1u) << r.err;
    EXPECT_FALSE(file_exists(image));
    EXPECT_EQ(r.out, "");
    // The segment the refused process kept (its id is in the line) goes with the test.
    const size_t seg = r.err.find("segment ");
    if (!strcmp(c.mode, "sysv-kept") && seg != std::string::npos) shmctl(atoi(r.err.c_str() + seg + 8), IPC_RMID, nullptr);
  }
  EXPECT_EQ(tmp.list(), std::vector<std::string>{});
  for (const auto& e : std::filesystem::directory_iterator("/tmp")) {
    if (e.path().filename().string().rfind("uffdlazy-refusal-linked-", 0) == 0) std::filesystem::remove_all(e.path());
  }
}

// zdtm shmemfd-priv: the private mapping was made again from a copy of the memory's contents, so
// what was written through the shared mapping after the resume no longer showed in it.
TEST(CheckpointRefusal, APrivateMappingOfSharedAnonymousMemory) {
  ASSERT_EQ(geteuid(), 0u) << "opening /proc/self/map_files needs CAP_CHECKPOINT_RESTORE: the suite runs as root";
  TempDir tmp;
  const std::string image = tmp.file("shared-private.img");
  ProcessResult r = run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("checkpoint_refusals"), "shared-private"},
                                with_input("", true));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("uffdlazy: checkpoint " + image + ": refused: a private mapping of shared memory at 0x"),
            std::string::npos) << r.err;
  EXPECT_EQ(count_of(r.err, "\n"), 1u) << r.err;
  EXPECT_FALSE(file_exists(image));
  EXPECT_EQ(tmp.list(), std::vector<std::string>{});
}

TEST(CheckpointRefusal, TheProgramRunsNormallyWithoutACheckpoint) {
  for (const char* mode : {"netlink", "child", "zombie-group", "zombie-clone", "sysv-kept", "seccomp"}) {
    ProcessResult r = run_process({target_path("checkpoint_refusals"), mode, "--no-signal"}, with_input("x", false));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, std::string("ran ") + mode + "\n");
  }
}

TEST(CheckpointRefusal, NoImageMeansNoSuccessStatus) {
  TempDir tmp;
  // The program ends before anything asks for the checkpoint: its output is all there, its
  // status is not 0.
  const std::string image = tmp.file("never.img");
  ProcessResult early = run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("resume_target"), "--mb",
                                     "4", "--steps", "2"});
  EXPECT_EQ(early.exit_code, 2) << early.err;
  EXPECT_NE(early.out.find("\ntotal "), std::string::npos) << early.out;
  EXPECT_NE(early.err.find("the program ended with no image written; exit status 2"), std::string::npos) << early.err;
  EXPECT_FALSE(file_exists(image));
  // Refused in continue mode: the program goes on to its end (its input arrives once the refusal
  // was printed), and still does not exit 0.
  const std::string refused = tmp.file("refused.img");
  const char* script =
      "d=$1; mkfifo \"$d/in\"\n"
      "\"$2\" checkpoint -o \"$4\" --then continue -- \"$3\" netlink <\"$d/in\" >\"$d/out\" 2>\"$d/err\" &\n"
      "pid=$!\n"
      "exec 3>\"$d/in\"\n"
      "n=0; while ! grep -q refused \"$d/err\" && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done\n"
      "echo x >&3; exec 3>&-\n"
      "wait $pid; echo \"status $?\"; cat \"$d/out\"; cat \"$d/err\" >&2\n";
  ProcessResult cont = run_process({"/bin/sh", "-c", script, "sh", tmp.path(), cli_path(),
                                    target_path("checkpoint_refusals"), refused});
  EXPECT_EQ(cont.out, "status 2\nran netlink\n") << cont.err;
  EXPECT_NE(cont.err.find("refused: descriptor 3 (a socket) is of family 16"), std::string::npos) << cont.err;
  EXPECT_NE(cont.err.find("the program ended with no image written; exit status 2"), std::string::npos) << cont.err;
  EXPECT_FALSE(file_exists(refused));
  // A program that exits with a status of its own keeps it.
  ProcessResult own = run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("resume_target"), "--mb",
                                   "4", "--steps", "1", "--exit", "5"});
  EXPECT_EQ(own.exit_code, 5) << own.err;
}

// Not refusable here, so not tested: a shadow stack (this kernel has user shadow stacks off) and
// hugetlb memory (no huge pages are reserved).

TEST(CheckpointRefusal, AProgramUnderRestore) {
  TempDir tmp;
  const std::string snap = tmp.file("plain.snap");
  ProcessResult rec = record(snap, {}, {target_path("resume_target"), "--mb", "4", "--steps", "1"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  const std::string image = tmp.file("restored.img");
  RunOptions o = with_input("", true);
  o.with_shim = true;
  o.env["UFFDLAZY_SNAPSHOT"] = snap;
  o.env["UFFDLAZY_CHECKPOINT"] = image;
  ProcessResult r = run_process({target_path("resume_target"), "--mb", "4", "--steps", "3", "--signal-at", "1",
                                 "--pause-at", "1"}, o);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("refused: the program runs under uffdlazy restore"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(image));
}

// A resumable image of resume_target, paused in a read at step 1.
ResumeCase paused(const std::string& name, std::vector<std::string> extra = {}) {
  ResumeCase c(name);
  c.args = {"--mb", "8", "--steps", "4", "--pause-at", "1"};
  c.args.insert(c.args.end(), extra.begin(), extra.end());
  c.checkpoint_extra = {"--signal-at", "1"};
  c.input = "y";
  return c;
}

void expect_refused(const ProcessResult& r, const std::string& says) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  EXPECT_EQ(count_of(r.err, "\n"), 1u) << r.err;
}

TEST(ResumeRefusal, AnOpenFileThatWasReplaced) {
  ResumeCase c = paused("replaced");
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  const std::string log = c.dir + "/log";
  const std::string content = read_file(log);
  ASSERT_EQ(rename(log.c_str(), (log + ".old").c_str()), 0);
  write_file(log, content);
  c.resume();
  expect_refused(c.resumed, "descriptor 3: " + log + " is gone or was replaced since the checkpoint");
  EXPECT_EQ(read_file(log), content);
}

TEST(ResumeRefusal, AMappedFileThatChanged) {
  // The target's own executable is mapped: a copy of it, changed after the checkpoint.
  TempDir tmp;
  const std::string exe = tmp.file("resume_target");
  write_file(exe, read_file(target_path("resume_target")));
  chmod(exe.c_str(), 0755);
  const std::string image = tmp.file("changed.img");
  ProcessResult r = run_process({cli_path(), "checkpoint", "-o", image, "--", exe, "--mb", "8", "--steps", "3",
                                 "--signal-at", "1", "--pause-at", "1"},
                                with_input("", true));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string bytes = read_file(exe);
  bytes.push_back('\0');
  write_file(exe, bytes);
  ProcessResult res = run_process({cli_path(), "resume", image}, with_input("y", false));
  expect_refused(res, "the mapped file " + exe + " changed since the checkpoint");
}

TEST(ResumeRefusal, AWorkingDirectoryThatIsGone) {
  TempDir tmp;
  const std::string dir = tmp.file("cwd");
  mkdir(dir.c_str(), 0755);
  const std::string image = tmp.file("cwd.img");
  ProcessResult r = run_process({"/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\"", "sh", dir, cli_path(),
                                 "checkpoint", "-o", image, "--", target_path("resume_target"), "--mb", "8", "--steps",
                                 "3", "--signal-at", "1", "--pause-at", "1"},
                                with_input("", true));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rmdir(dir.c_str());
  ProcessResult res = run_process({cli_path(), "resume", image}, with_input("y", false));
  expect_refused(res, "cannot enter the working directory " + dir);
}

TEST(ResumeRefusal, ASnapshotThatIsNotAProcessImage) {
  TempDir tmp;
  const std::string snap = tmp.file("plain.snap");
  ProcessResult rec = record(snap, {}, {target_path("resume_target"), "--mb", "4", "--steps", "1"});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  ProcessResult res = run_process({cli_path(), "resume", snap});
  expect_refused(res, "not a process image");
}

TEST(ResumeRefusal, AnotherUser) {
  ResumeCase c = paused("uid");
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  chmod(c.image.c_str(), 0644);
  chmod(c.dir.c_str(), 0755);
  // The build tree may lie where nobody cannot reach (a clone in a mktemp -d directory, 0700):
  // nobody runs copies of the CLI and the restorer from a directory of the test's own.
  const std::string bin = c.dir + "/bin";
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  const std::string built = cli_path().substr(0, cli_path().rfind('/'));
  for (const char* name : {"uffdlazy", "uffdlazy-restorer"}) {
    std::filesystem::copy_file(built + "/" + name, bin + "/" + name);
    chmod((bin + "/" + name).c_str(), 0755);
  }
  ProcessResult r =
      run_process({target_path("as_nobody"), bin + "/uffdlazy", "resume", c.image}, with_input("y", false));
  expect_refused(r, "the process ran as uid 0, and this is uid 65534");
}

// Rewrites one field of the process record and every checksum that covers it, as an image
// written on another machine would look.
void forge_process_record(const std::string& image, size_t field_offset, const std::string& bytes) {
  std::string f = read_file(image);
  snap::FileHeader h;
  memcpy(&h, f.data(), sizeof h);
  for (uint32_t i = 0; i < h.section_count; i++) {
    const size_t at = h.section_table_offset + size_t(i) * h.section_entry_size;
    snap::SectionEntry e;
    memcpy(&e, f.data() + at, sizeof e);
    if (e.type != uint32_t(snap::ProcessSection::kProcess)) continue;
    memcpy(&f[e.offset + sizeof(snap::TableHeader) + field_offset], bytes.data(), bytes.size());
    e.checksum = snap::checksum(f.data() + e.offset, e.length);
    memcpy(&f[at], &e, sizeof e);
  }
  h.section_table_checksum = snap::checksum(f.data() + h.section_table_offset, size_t(h.section_count) * h.section_entry_size);
  memcpy(&f[0], &h, sizeof h);
  memset(&f[offsetof(snap::FileHeader, header_checksum)], 0, 8);
  const uint64_t sum = snap::checksum(f.data(), h.header_size);
  memcpy(&f[offsetof(snap::FileHeader, header_checksum)], &sum, 8);
  write_file(image, f);
}

std::string u64_bytes(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

TEST(ResumeRefusal, AnotherKernelOrCpu) {
  ResumeCase c = paused("foreign");
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  const std::string original = read_file(c.image);
  forge_process_record(c.image, offsetof(snap::ProcessRecord, vdso_checksum), u64_bytes(0x1234));
  ProcessResult vdso = run_process({cli_path(), "resume", c.image}, with_input("y", false));
  expect_refused(vdso, "this kernel's vDSO differs from the one the process used");
  write_file(c.image, original);
  forge_process_record(c.image, offsetof(snap::ProcessRecord, xcr0), u64_bytes(0x7));
  ProcessResult cpu = run_process({cli_path(), "resume", c.image}, with_input("y", false));
  expect_refused(cpu, "the CPU's XSAVE features differ");
  // The untouched image still resumes.
  write_file(c.image, original);
  c.resume();
  EXPECT_EQ(c.resumed.exit_code, 0) << c.resumed.err;
}

TEST(ResumeRefusal, DamagedPagesNeverReachTheProgram) {
  ResumeCase c = paused("damaged");
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  snap::SnapshotReader reader;
  ASSERT_TRUE(reader.open(c.image.c_str()).ok());
  snap::ProcessImage image;
  ASSERT_TRUE(image.open(reader).ok());
  uint64_t eager_block = 0, lazy_block = 0;
  for (uint64_t r = 0; r < reader.region_count(); r++) {
    if (!image.region_lazy(r)) {
      // Any page of eager memory stored whole (most are packed since format 2.1: a byte changed
      // there fails the packed section's checksum before the restorer starts, Resume.TenGib...).
      for (uint64_t k = 0; k < reader.region(r).run_count && !eager_block; k++) {
        const snap::RunRecord& run = reader.run(r, k);
        for (uint64_t i = 0; i < run.pages && !eager_block; i++) {
          const snap::PageRef p = reader.page(r, run.first_page + i);
          if (p.kind == snap::PageKind::kData) eager_block = p.offset;
        }
      }
      continue;
    }
    if (reader.region(r).page_count < 3) continue;
    const snap::PageRef p = reader.page(r, 2);
    if (p.kind != snap::PageKind::kData) continue;
    // The lazily served array (8 MiB): the target touches its page 2 at step 2, after the resume.
    if (reader.region(r).page_count == 2048 && !lazy_block) lazy_block = p.offset;
  }
  ASSERT_NE(eager_block, 0u);
  ASSERT_NE(lazy_block, 0u);
  // Eagerly restored memory: the restorer stops before the program runs.
  const std::string bad_eager = c.dir + "/eager.img";
  copy_flipped(c.image, bad_eager, eager_block + 100);
  ProcessResult eager = run_process({cli_path(), "resume", bad_eager}, with_input("y", false));
  EXPECT_EQ(eager.exit_code, 1);
  EXPECT_NE(eager.err.find("failed its checksum; the image is damaged"), std::string::npos) << eager.err;
  EXPECT_EQ(eager.out, "");
  // Lazily served memory: the monitor stops the process the moment the page is asked for.
  const std::string bad_lazy = c.dir + "/lazy.img";
  copy_flipped(c.image, bad_lazy, lazy_block + 100);
  ProcessResult lazy = run_process({cli_path(), "resume", bad_lazy}, with_input("y", false));
  EXPECT_EQ(lazy.signal, SIGKILL) << lazy.err;
  EXPECT_NE(lazy.err.find("failed its checksum; stopping the process rather than hand it a wrong page"),
            std::string::npos) << lazy.err;
  EXPECT_EQ(lazy.out, "");
  // With --eager the same page is checked by the restorer.
  ProcessResult lazy_eagerly = run_process({cli_path(), "resume", bad_lazy, "--eager"}, with_input("y", false));
  EXPECT_EQ(lazy_eagerly.exit_code, 1);
  EXPECT_NE(lazy_eagerly.err.find("failed its checksum; the image is damaged"), std::string::npos) << lazy_eagerly.err;
}

TEST(ResumeRefusal, BadPagingSettingsAreNamed) {
  ResumeCase c = paused("paging");
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  struct Bad {
    std::map<std::string, std::string> env;
    std::vector<std::string> options;
    const char* says;
  };
  const Bad bad[] = {
      {{{"UFFDLAZY_PREFETCH", "sometimes"}}, {}, "UFFDLAZY_PREFETCH='sometimes' is not valid; use none"},
      {{{"UFFDLAZY_READAHEAD", "0"}}, {}, "UFFDLAZY_READAHEAD='0' is not valid; use a number of pages from 1 to 4096"},
      {{}, {"--readahead", "9999"}, "UFFDLAZY_READAHEAD='9999' is not valid"},
      {{}, {"--prefetch", "most"}, "UFFDLAZY_PREFETCH='most' is not valid"},
      {{{"UFFDLAZY_WS", c.dir + "/ws"}}, {}, "UFFDLAZY_WS cannot be used with resume"},
      {{{"UFFDLAZY_WS_RECORD", c.dir + "/ws"}}, {}, "UFFDLAZY_WS_RECORD cannot be used with resume"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.says);
    std::vector<std::string> argv = {cli_path(), "resume", c.image};
    argv.insert(argv.end(), b.options.begin(), b.options.end());
    RunOptions o = with_input("y", false);
    o.env = b.env;
    expect_refused(run_process(argv, o), b.says);
  }
  // Nothing was half resumed: the image still resumes.
  c.resume();
  EXPECT_EQ(c.resumed.exit_code, 0) << c.resumed.err;
}

TEST(ResumeRefusal, InspectShowsAProcessImage) {
  ResumeCase c = paused("inspect");
  c.args.insert(c.args.end(), {"--threads", "3"});
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  ProcessResult text = run_process({cli_path(), "inspect", c.image});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* what : {"\nprocess     pid ", "\nthreads     4 of the program, 2 of the shim\n", "\nmappings    ", "\ndescriptors "}) {
    EXPECT_NE(text.out.find(what), std::string::npos) << what << "\n" << text.out.substr(0, 8000);
  }
  EXPECT_NE(text.out.find(c.dir + "/log"), std::string::npos) << text.out.substr(0, 8000);
  ProcessResult json = run_process({cli_path(), "inspect", c.image, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::string error;
  std::optional<report::JsonValue> v = report::parse_json(json.out, &error);
  ASSERT_TRUE(v.has_value()) << error << "\n" << json.out.substr(0, 4000);
  const report::JsonValue* process = v->find("process");
  ASSERT_NE(process, nullptr);
  for (const char* key : {"threads", "mappings", "descriptors"}) {
    const report::JsonValue* list = process->find(key);
    ASSERT_NE(list, nullptr) << key;
    EXPECT_FALSE(list->items.empty()) << key;
  }
  // The leader, three workers, the shim's monitor and checkpoint thread.
  EXPECT_EQ(process->find("threads")->items.size(), 6u);
  // The two files the target writes, at their offsets.
  EXPECT_NE(json.out.find("\"path\":\"" + c.dir + "/log\""), std::string::npos);
  EXPECT_NE(json.out.find("\"path\":\"" + c.dir + "/data\""), std::string::npos);
}

TEST(ResumeRefusal, ADamagedProcessSectionFailsVerifyAndIsNotResumed) {
  ResumeCase c = paused("section");
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  const std::string f = read_file(c.image);
  snap::FileHeader h;
  memcpy(&h, f.data(), sizeof h);
  for (snap::ProcessSection which : {snap::ProcessSection::kProcess, snap::ProcessSection::kThreads,
                                     snap::ProcessSection::kMappings, snap::ProcessSection::kDescriptors}) {
    SCOPED_TRACE(int(which));
    uint64_t offset = 0, length = 0;
    for (uint32_t i = 0; i < h.section_count; i++) {
      snap::SectionEntry e;
      memcpy(&e, f.data() + h.section_table_offset + size_t(i) * h.section_entry_size, sizeof e);
      if (e.type == uint32_t(which)) offset = e.offset, length = e.length;
    }
    ASSERT_GT(length, 64u);
    const std::string bad = c.dir + "/bad-section.img";
    copy_flipped(c.image, bad, offset + length / 2);
    ProcessResult v = run_process({cli_path(), "verify", bad});
    EXPECT_NE(v.exit_code, 0) << v.out << v.err;
    EXPECT_NE((v.out + v.err).find("section"), std::string::npos) << v.out << v.err;
    EXPECT_NE((v.out + v.err).find("checksum"), std::string::npos) << v.out << v.err;
    ProcessResult r = run_process({cli_path(), "resume", bad}, with_input("y", false));
    expect_refused(r, bad);
    EXPECT_NE(r.err.find("checksum"), std::string::npos) << r.err;
  }
}

TEST(ResumeRefusal, WithoutUserfaultfdItResumesEagerlyOrRefusesWhenStrict) {
  ResumeCase c = paused("nouffd");
  c.reference();
  c.take_checkpoint();
  ASSERT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  ProcessResult strict = run_process({target_path("no_userfaultfd"), cli_path(), "resume", c.image, "--strict"},
                                     with_input("y", false));
  EXPECT_EQ(strict.exit_code, 3) << strict.err;
  EXPECT_EQ(strict.out, "");
  EXPECT_NE(strict.err.find("no userfaultfd that handles kernel faults"), std::string::npos) << strict.err;
  ProcessResult eager = run_process({target_path("no_userfaultfd"), cli_path(), "resume", c.image},
                                    with_input("y", false));
  EXPECT_EQ(eager.exit_code, 0) << eager.err;
  EXPECT_EQ(count_of(eager.err, "resuming eagerly"), 1u) << eager.err;
  EXPECT_EQ(c.checkpoint.out + eager.out, c.expected.out);
}

// What a resume must make again and finds taken or gone since the checkpoint: refused with one
// line before anything of the process runs, nothing left behind, and the image resumes once the
// obstacle is gone.
ResumeCase held(const std::string& name, const std::string& objects) {
  ResumeCase c = paused(name, {"--objects", objects});
  c.take_checkpoint();
  EXPECT_EQ(c.checkpoint.exit_code, 0) << c.checkpoint.err;
  return c;
}

// The TCP listener's address, from the image.
sockaddr_in listener_address(const std::string& image) {
  snap::SnapshotReader reader;
  EXPECT_TRUE(reader.open(image.c_str()).ok());
  snap::ProcessImage img;
  EXPECT_TRUE(img.open(reader).ok());
  sockaddr_in a = {};
  for (uint32_t i = 0; i < img.object_count(); i++) {
    const snap::ObjectRecord& o = img.object(i);
    if (o.kind == uint32_t(snap::ObjectKind::kInetSocket) && o.path.length == sizeof a) {
      memcpy(&a, img.object_string(o.path), sizeof a);
    }
  }
  return a;
}

TEST(ResumeRefusal, ATcpAddressSomeoneElseListensOn) {
  ResumeCase c = held("tcp-taken", "tcp");
  sockaddr_in a = listener_address(c.image);
  ASSERT_NE(a.sin_port, 0);
  const int other = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(listen(other, 1), 0);
  c.resume();
  expect_refused(c.resumed, "cannot make a socket again (bind to its address): Address already in use (EADDRINUSE)");
  close(other);
  c.resume();
  EXPECT_EQ(c.resumed.exit_code, 0) << c.resumed.err;
}

TEST(ResumeRefusal, AUnixAddressSomeoneElseListensOnAndNoSocketFileIsLeft) {
  // The pipe's FIFO and the inotify watch come before the listener: the refusal undoes nothing
  // of theirs it should not, and leaves no socket file of its own.
  ResumeCase c = held("unix-taken", "fifo,stream,listen");
  const std::string path = c.dir + "/listener";
  unlink(path.c_str());
  const int other = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(listen(other, 1), 0);
  c.resume();
  expect_refused(c.resumed, "cannot make a socket again (another socket listens on " + path + ")");
  close(other);
  c.resume();  // its socket file is stale now: removed and bound again
  EXPECT_EQ(c.resumed.exit_code, 0) << c.resumed.err;
}

TEST(ResumeRefusal, AnInotifyWatchWhosePathIsGone) {
  ResumeCase c = held("watch-gone", "inotify");
  const std::string watched = c.dir + "/watched";
  ASSERT_EQ(rmdir(watched.c_str()), 0);
  c.resume();
  expect_refused(c.resumed, "inotify watch 2: " + watched + " is gone or was replaced since the checkpoint");
}

}  // namespace
}  // namespace uffdlazy::test
