// Module identity: build-ids read from real ELF files, and the fallbacks.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "core/snapshot/executable_identity.h"

using namespace uffdlazy::snap;

TEST(SnapshotIdentity, RunningExecutableHasBuildId) {
  ModuleIdentity self;
  ASSERT_EQ(read_executable_identity(&self), 0);
  EXPECT_GT(self.path_length, 0u);
  EXPECT_EQ(self.path[0], '/');
  EXPECT_EQ(std::string(self.path), std::filesystem::read_symlink("/proc/self/exe").string());
  EXPECT_EQ(self.id_kind, IdKind::kGnuBuildId);  // g++ on Debian links with --build-id
  EXPECT_GE(self.id_length, 8u);

  // The same file by path gives the same identity.
  ModuleIdentity by_path;
  ASSERT_EQ(read_module_identity(self.path, &by_path), 0);
  EXPECT_TRUE(same_module(self, by_path));
  EXPECT_EQ(by_path.id_length, self.id_length);
}

TEST(SnapshotIdentity, OtherExecutableDiffers) {
  ModuleIdentity self, other;
  ASSERT_EQ(read_executable_identity(&self), 0);
  ASSERT_EQ(read_module_identity("/bin/true", &other), 0);
  EXPECT_EQ(other.id_kind, IdKind::kGnuBuildId);
  EXPECT_GT(other.id_length, 0u);
  EXPECT_FALSE(same_module(self, other));
  EXPECT_FALSE(self.id_length == other.id_length && !memcmp(self.id, other.id, self.id_length));
}

TEST(SnapshotIdentity, NonElfFallsBackToContentHash) {
  char path[] = "/tmp/uffdlazy-notelf-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "#!/bin/sh\necho hi\n", 18), 18);
  close(fd);
  ModuleIdentity m;
  EXPECT_EQ(read_module_identity(path, &m, /*hash_fallback=*/false), -ENOEXEC);
  EXPECT_FALSE(m.has_id());
  EXPECT_STREQ(m.path, path);
  ASSERT_EQ(read_module_identity(path, &m), 0);
  EXPECT_EQ(m.id_kind, IdKind::kContentXxh3);
  EXPECT_EQ(m.id_length, 8u);
  unlink(path);
}

TEST(SnapshotIdentity, MissingFile) {
  ModuleIdentity m;
  EXPECT_EQ(read_module_identity("/no/such/module.so", &m), -ENOENT);
  EXPECT_FALSE(m.has_id());
}
