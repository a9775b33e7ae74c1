// A failed snapshot leaves nothing under its final name (and no temporary file either); an
// existing snapshot there survives a failed attempt to replace it.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

namespace {

class SnapshotWriterAtomic : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uffdlazy-snapw-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ps_ = uint32_t(sysconf(_SC_PAGESIZE));
    exe_.set_path("/usr/bin/app", 12);
  }
  void TearDown() override {
    chmod(dir_.c_str(), 0755);
    std::filesystem::remove_all(dir_);
  }
  size_t files_in(const std::string& d) const {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(d)) n += bool(e.path().c_str());
    return n;
  }
  // A region of `pages` distinct non-zero pages.
  WriteStatus add_pages(SnapshotWriter& w, uint64_t pages) {
    page_.assign(ps_, 0);
    RegionInfo info{0x10000000, pages * ps_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, {}};
    return w.add_region_with(info, [&](uint64_t i) -> const void* {
      memset(page_.data(), 0x5a, ps_);
      memcpy(page_.data(), &i, sizeof i);
      return page_.data();
    });
  }

  std::string dir_;
  uint32_t ps_ = 0;
  ModuleIdentity exe_;
  std::vector<uint8_t> page_;
};

TEST_F(SnapshotWriterAtomic, MissingDirectory) {
  SnapshotWriter w;
  const std::string path = dir_ + "/no/such/dir/a.snap";
  WriteStatus s = w.open(path.c_str());
  EXPECT_EQ(s.error, WriteError::kCreateTemp);
  EXPECT_EQ(s.err, ENOENT);
  // Every later call reports the first failure and does nothing.
  EXPECT_EQ(w.begin(exe_, 0).error, WriteError::kCreateTemp);
  EXPECT_EQ(w.commit().error, WriteError::kCreateTemp);
  uffdlazy::LineWriter lw;
  describe(w.status(), lw);
  EXPECT_EQ(std::string(lw.data(), lw.size()),
            "cannot create the temporary snapshot file: No such file or directory (ENOENT)");
}

TEST_F(SnapshotWriterAtomic, UnwritableDirectory) {
  // Root ignores directory permissions, so the attempt runs in a child that dropped to nobody.
  const std::string sub = dir_ + "/ro";
  ASSERT_EQ(mkdir(sub.c_str(), 0755), 0);
  if (geteuid() != 0) {
    ASSERT_EQ(chmod(sub.c_str(), 0555), 0);
  }
  const std::string path = sub + "/a.snap";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(10);
    SnapshotWriter w;
    WriteStatus s = w.open(path.c_str());
    _exit(s.error == WriteError::kCreateTemp && s.err == EACCES ? 0 : 20 + int(s.error));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(files_in(sub), 0u);
}

TEST_F(SnapshotWriterAtomic, FileSizeLimitAbortsAndCleansUp) {
  // RLIMIT_FSIZE turns the write that crosses 64 KiB into EFBIG, like a full disk would give
  // ENOSPC; both take the same path. Done in a child so the limit stays there.
  const std::string path = dir_ + "/big.snap";
  {
    std::ofstream(path) << "previous snapshot";
  }
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl{64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
    SnapshotWriter w;
    WriterOptions opt;
    opt.buffer_pages = 4;
    if (!w.open(path.c_str(), opt).ok() || !w.begin(exe_, 0).ok()) _exit(11);
    WriteStatus s = add_pages(w, 256);
    if (s.ok()) s = w.commit();
    _exit(s.error == WriteError::kWrite && s.err == EFBIG ? 0 : 20 + int(s.error));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(files_in(dir_), 1u);  // the temporary file is gone
  std::ifstream f(path);
  std::string old((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(old, "previous snapshot");
}

TEST_F(SnapshotWriterAtomic, AbortAndDestructorLeaveNothing) {
  const std::string path = dir_ + "/a.snap";
  {
    SnapshotWriter w;
    ASSERT_TRUE(w.open(path.c_str()).ok());
    ASSERT_TRUE(w.begin(exe_, 0).ok());
    ASSERT_TRUE(add_pages(w, 10).ok());
    EXPECT_EQ(files_in(dir_), 1u);  // the temporary file
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), -1);  // nothing under the final name until commit
  }
  EXPECT_EQ(files_in(dir_), 0u);
  SnapshotWriter w;
  ASSERT_TRUE(w.open(path.c_str()).ok());
  ASSERT_TRUE(w.begin(exe_, 0).ok());
  w.abort();
  EXPECT_EQ(files_in(dir_), 0u);
  EXPECT_EQ(w.commit().error, WriteError::kBadState);
}

TEST_F(SnapshotWriterAtomic, ProviderFailureAborts) {
  const std::string path = dir_ + "/a.snap";
  SnapshotWriter w;
  ASSERT_TRUE(w.open(path.c_str()).ok());
  ASSERT_TRUE(w.begin(exe_, 0).ok());
  struct Failing : PageProvider {
    std::vector<uint8_t> bytes;
    const void* page(uint64_t i) override {
      if (i == 3) {
        fail(EFAULT);
        return nullptr;
      }
      return bytes.data();
    }
  } failing;
  failing.bytes.assign(ps_, 1);
  RegionInfo info{0x10000000, 8ull * ps_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, {}};
  WriteStatus s = w.add_region(info, failing);
  EXPECT_EQ(s.error, WriteError::kSourceFailed);
  EXPECT_EQ(s.err, EFAULT);
  EXPECT_EQ(files_in(dir_), 0u);
}

TEST_F(SnapshotWriterAtomic, CallsOutOfOrder) {
  SnapshotWriter w;
  EXPECT_EQ(w.begin(exe_, 0).error, WriteError::kBadState);
  SnapshotWriter w2;
  ASSERT_TRUE(w2.open((dir_ + "/a.snap").c_str()).ok());
  EXPECT_EQ(w2.commit().error, WriteError::kBadState);  // commit before begin
  EXPECT_EQ(files_in(dir_), 0u);
  SnapshotWriter w3;
  WriterOptions bad;
  bad.page_size = 1000;
  EXPECT_EQ(w3.open((dir_ + "/b.snap").c_str(), bad).error, WriteError::kBadArgument);
}

TEST_F(SnapshotWriterAtomic, CommitReplacesExistingSnapshot) {
  const std::string path = dir_ + "/a.snap";
  {
    std::ofstream(path) << "old";
  }
  SnapshotWriter w;
  ASSERT_TRUE(w.open(path.c_str()).ok());
  ASSERT_TRUE(w.begin(exe_, 0).ok());
  ASSERT_TRUE(add_pages(w, 3).ok());
  ASSERT_TRUE(w.commit().ok());
  EXPECT_EQ(files_in(dir_), 1u);
  SnapshotReader r;
  ASSERT_TRUE(r.open(path.c_str()).ok());
  EXPECT_EQ(r.region(0).data_pages, 3u);
  EXPECT_EQ(w.stats().file_size, r.file_size());
}

}  // namespace
