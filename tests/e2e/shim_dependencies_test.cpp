// The shim runs inside arbitrary programs: it must never bring libcurl or libcrypto in with it (the
// network side of remote snapshots lives in the CLI and the fetcher, docs/remote.md). Its
// dependencies are the strings its dynamic section names; neither library may be among them.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {
namespace {

TEST(ShimDependencies, NeitherLibcurlNorLibcryptoIsLinkedIntoTheShim) {
  std::ifstream in(shim_path(), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 4096u);
  EXPECT_EQ(bytes.find("libcurl"), std::string::npos);
  EXPECT_EQ(bytes.find("libcrypto"), std::string::npos);
  EXPECT_EQ(bytes.find("libssl"), std::string::npos);
  // The CLI, which does the transfers, does link libcurl: the check above can see a dependency.
  std::ifstream cli(cli_path(), std::ios::binary);
  const std::string cli_bytes((std::istreambuf_iterator<char>(cli)), std::istreambuf_iterator<char>());
  EXPECT_NE(cli_bytes.find("libcurl"), std::string::npos);
}

}  // namespace
}  // namespace uffdlazy::test
