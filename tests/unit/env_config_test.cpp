#include "core/base/env_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace uffdlazy {
namespace {

bool parse(std::vector<std::string> vars, Config* cfg, std::string* err) {
  std::vector<char*> env;
  for (auto& v : vars) env.push_back(v.data());
  env.push_back(nullptr);
  LineWriter w;
  bool ok = parse_config(env.data(), cfg, &w);
  *err = std::string(w.data(), w.size());
  return ok;
}

TEST(EnvConfig, DefaultsWithoutVariables) {
  Config c;
  std::string err;
  ASSERT_TRUE(parse({"PATH=/bin", "HOME=/root"}, &c, &err));
  EXPECT_FALSE(c.strict);
  EXPECT_FALSE(c.stats);
  EXPECT_EQ(c.min_size, 64u * 1024);
}

TEST(EnvConfig, ReadsEveryKnownVariable) {
  Config c;
  std::string err;
  ASSERT_TRUE(parse({"UFFDLAZY_STRICT=1", "UFFDLAZY_STATS=yes", "UFFDLAZY_MIN_SIZE=2M", "UFFDLAZY_FAULT_AROUND=4",
                     "UFFDLAZY_SNAPSHOT=/tmp/x.snap", "UFFDLAZY_USER_MODE_ONLY=on"},
                    &c, &err))
      << err;
  EXPECT_TRUE(c.strict);
  EXPECT_TRUE(c.stats);
  EXPECT_TRUE(c.user_mode_only);
  EXPECT_EQ(c.min_size, 2u << 20);
  EXPECT_EQ(c.fault_around, 4u);
  EXPECT_STREQ(c.snapshot, "/tmp/x.snap");
}

TEST(EnvConfig, BadValueNamesTheVariableAndWhatItAccepts) {
  Config c;
  std::string err;
  EXPECT_FALSE(parse({"UFFDLAZY_MIN_SIZE=lots"}, &c, &err));
  EXPECT_EQ(err, "UFFDLAZY_MIN_SIZE='lots' is not valid; use a byte count with an optional K, M or G suffix, e.g. 64K");
  EXPECT_FALSE(parse({"UFFDLAZY_STRICT=maybe"}, &c, &err));
  EXPECT_NE(err.find("UFFDLAZY_STRICT='maybe'"), std::string::npos) << err;
}

TEST(EnvConfig, InterceptChoosesLibcOrSymbols) {
  Config c;
  std::string err;
  EXPECT_STREQ(c.intercept, "libc");
  ASSERT_TRUE(parse({"UFFDLAZY_INTERCEPT=symbols"}, &c, &err)) << err;
  EXPECT_STREQ(c.intercept, "symbols");
  Config d;
  EXPECT_FALSE(parse({"UFFDLAZY_INTERCEPT=seccomp"}, &d, &err));
  EXPECT_NE(err.find("UFFDLAZY_INTERCEPT='seccomp' is not valid; use libc"), std::string::npos) << err;
  // The test seam is accepted but not advertised among the known variables.
  Config e;
  ASSERT_TRUE(parse({"UFFDLAZY_TEST_ALTER_LIBC=brk"}, &e, &err)) << err;
  EXPECT_STREQ(e.test_alter_libc, "brk");
  EXPECT_FALSE(parse({"UFFDLAZY_INTERCEPTS=libc"}, &e, &err));
  EXPECT_NE(err.find("INTERCEPT)"), std::string::npos) << err;
  EXPECT_EQ(err.find("TEST_ALTER_LIBC"), std::string::npos) << err;
}

TEST(EnvConfig, UnknownVariableIsAnErrorSoTyposShow) {
  Config c;
  std::string err;
  EXPECT_FALSE(parse({"UFFDLAZY_STAT=1"}, &c, &err));
  EXPECT_NE(err.find("unknown variable UFFDLAZY_STAT "), std::string::npos) << err;
}

TEST(EnvConfig, SizesWithSuffixes) {
  uint64_t v;
  EXPECT_TRUE(parse_size("4096", &v));
  EXPECT_EQ(v, 4096u);
  EXPECT_TRUE(parse_size("64K", &v));
  EXPECT_EQ(v, 65536u);
  EXPECT_TRUE(parse_size("1GiB", &v));
  EXPECT_EQ(v, 1u << 30);
  EXPECT_FALSE(parse_size("", &v));
  EXPECT_FALSE(parse_size("12Q", &v));
  EXPECT_FALSE(parse_size("99999999999999999999", &v));
}

}  // namespace
}  // namespace uffdlazy
