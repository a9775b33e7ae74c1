// `uffdlazy inspect` and `uffdlazy verify` on snapshots written by the writer: exit codes and
// the lines people and scripts rely on.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"
#include "uffdlazy/version.h"

using namespace uffdlazy::snap;

namespace {

struct CliRun {
  int code = -1;
  std::string out;  // stdout and stderr together
};

CliRun run_cli(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(UFFDLAZY_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class SnapshotCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // The build makes the CLI before the unit tests (tests/CMakeLists.txt): missing is a failure.
    ASSERT_EQ(access(UFFDLAZY_CLI, X_OK), 0) << UFFDLAZY_CLI << " is not built";
    char tmpl[] = "/tmp/uffdlazy-snapcli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/app.snap";
    const uint32_t ps = uint32_t(sysconf(_SC_PAGESIZE));
    ModuleIdentity exe, lib;
    ASSERT_EQ(read_executable_identity(&exe), 0);
    lib.set_path("/usr/lib/liballoc.so", 20);
    SnapshotWriter w;
    ASSERT_TRUE(w.open(path_.c_str()).ok());
    ASSERT_TRUE(w.begin(exe, kFlagNoAslr).ok());
    std::vector<uint8_t> page(ps);
    for (int region = 0; region < 4; region++) {
      RegionInfo info{0x7f0000000000ull + region * 0x100000ull, 20ull * ps, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, CallSite{&lib, 0x4242, uint64_t(region), 20ull * ps}};
      // Page 0 absent, page 1 zero, pages 18-19 repeat page 2, the rest distinct.
      ASSERT_TRUE(w.add_region_with(info, [&](uint64_t i) -> const void* {
                     if (i == 0) return nullptr;
                     const uint64_t tag = i >= 18 ? 2 : i;
                     memset(page.data(), i == 1 ? 0 : int(tag + 1), ps);
                     if (i != 1) memcpy(page.data(), &tag, sizeof tag);
                     if (i != 1) memcpy(page.data() + 8, &region, sizeof region);
                     return page.data();
                   }).ok());
    }
    ASSERT_TRUE(w.commit().ok());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string dir_, path_;
};

TEST_F(SnapshotCli, InspectShowsIdentityRegionsAndTotals) {
  CliRun r = run_cli("inspect " + path_);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("executable  /"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(gnu-build-id)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("flags no-aslr"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("regions     4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("liballoc.so+0x4242"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("in 64 data blocks"), std::string::npos) << r.out;  // 4 x 16 distinct
  EXPECT_NE(r.out.find("(8 duplicate pages)"), std::string::npos) << r.out;

  CliRun j = run_cli("inspect --json " + path_);
  EXPECT_EQ(j.code, 0);
  EXPECT_EQ(j.out.front(), '{');
  EXPECT_NE(j.out.find("\"duplicate_pages\":8"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"module\":\"/usr/lib/liballoc.so\""), std::string::npos) << j.out;
}

TEST_F(SnapshotCli, InspectShowsTheWriterVersion) {
  CliRun r = run_cli("inspect " + path_);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(std::string("written by  ") + UFFDLAZY_VERSION_STRING + "\n"), std::string::npos) << r.out;
  CliRun j = run_cli("inspect --json " + path_);
  EXPECT_EQ(j.code, 0) << j.out;
  EXPECT_NE(j.out.find(std::string("\"writer_version\":\"") + UFFDLAZY_VERSION_STRING + "\""), std::string::npos) << j.out;
}

// A file that does not say which release wrote it (zeros where the version goes) is still read.
TEST_F(SnapshotCli, InspectReadsAFileWithoutWriterVersion) {
  std::ifstream in(path_, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), sizeof(FileHeader));
  FileHeader h;
  memcpy(&h, bytes.data(), sizeof h);
  memset(h.writer_version, 0, sizeof h.writer_version);
  memcpy(bytes.data(), &h, sizeof h);
  h.header_checksum = checksum_with_zeroed_u64(bytes.data(), h.header_size, offsetof(FileHeader, header_checksum));
  memcpy(bytes.data(), &h, sizeof h);
  const std::string old = dir_ + "/old.snap";
  std::ofstream(old, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), long(bytes.size()));
  CliRun r = run_cli("inspect " + old);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("written by  unknown\n"), std::string::npos) << r.out;
  CliRun j = run_cli("inspect --json " + old);
  EXPECT_EQ(j.code, 0) << j.out;
  EXPECT_NE(j.out.find("\"writer_version\":null"), std::string::npos) << j.out;
}

TEST_F(SnapshotCli, VerifyIntactSnapshot) {
  CliRun r = run_cli("verify " + path_);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, path_ + ": ok (4 regions, 80 pages, 64 data blocks verified)\n");
}

TEST_F(SnapshotCli, VerifyNamesTheFirstBadPage) {
  SnapshotReader reader;
  ASSERT_TRUE(reader.open(path_.c_str()).ok());
  const uint64_t off = reader.page(2, 17).offset;
  ASSERT_EQ(reader.page(2, 17).kind, PageKind::kData);
  reader.close();
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(off + 100));
    f.put('\x7f');
  }
  CliRun r = run_cli("verify " + path_);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(path_ + ": region 2 page 17: checksum mismatch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 bad pages"), std::string::npos) << r.out;

  // The index is damaged: verify reports it (exit 1), inspect refuses (exit 2).
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x01');
  }
  r = run_cli("verify " + path_);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("uffdlazy: " + path_ + ": header checksum mismatch"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli("inspect " + path_).code, 2);
}

TEST_F(SnapshotCli, BadInputsExitTwo) {
  CliRun r = run_cli("verify " + dir_ + "/missing.snap");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("uffdlazy: " + dir_ + "/missing.snap: cannot open: No such file or directory"),
            std::string::npos)
      << r.out;
  { std::ofstream(dir_ + "/text") << "hello\n"; }
  r = run_cli("inspect " + dir_ + "/text");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("not a uffdlazy snapshot"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli("verify").code, 2);
  EXPECT_EQ(run_cli("inspect").code, 2);
  EXPECT_EQ(run_cli("inspect --bogus " + path_).code, 2);
}

TEST_F(SnapshotCli, Help) {
  CliRun r = run_cli("inspect --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: uffdlazy inspect"), std::string::npos);
  r = run_cli("verify --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: uffdlazy verify"), std::string::npos);
}

}  // namespace
