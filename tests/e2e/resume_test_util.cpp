#include "tests/e2e/resume_test_util.h"

#include <gtest/gtest.h>

namespace uffdlazy::test {

ResumeCase::ResumeCase(const std::string& name) : tmp(std::make_unique<TempDir>()) {
  dir = tmp->path();
  image = dir + "/" + name + ".img";
}

std::vector<std::string> ResumeCase::target(const std::string& log, const std::string& data) const {
  std::vector<std::string> v = {target_path("resume_target")};
  v.insert(v.end(), args.begin(), args.end());
  v.insert(v.end(), {"--log", dir + "/" + log, "--data", dir + "/" + data});
  if (mapped) v.insert(v.end(), {"--mapped", dir + "/" + (log == "ref-log" ? "ref-map" : "map")});
  return v;
}

RunOptions with_input(const std::string& data, bool keep_open) {
  RunOptions o;
  o.stdin_data = data;
  o.keep_stdin_open = keep_open;
  o.timeout_seconds = 120;
  return o;
}

void ResumeCase::reference() {
  // Like `uffdlazy checkpoint`, without the descriptors the test itself inherited.
  RunOptions o = with_input(input, false);
  o.close_inherited_fds = true;
  expected = run_process(target("ref-log", "ref-data"), o);
}

void ResumeCase::take_checkpoint() {
  std::vector<std::string> argv = {cli_path(), "checkpoint", "-o", image, "--at", at, "--then", then, "--"};
  std::vector<std::string> t = target("log", "data");
  argv.insert(argv.end(), t.begin(), t.end());
  argv.insert(argv.end(), checkpoint_extra.begin(), checkpoint_extra.end());
  checkpoint = run_process(argv, with_input("", true));
}

void ResumeCase::resume() {
  std::vector<std::string> argv = resume_wrapper;
  argv.insert(argv.end(), {cli_path(), "resume", image, "--stats"});
  if (!lazy) argv.push_back("--eager");
  argv.insert(argv.end(), resume_options.begin(), resume_options.end());
  RunOptions o = with_input(input, false);
  o.env = resume_env;
  // The resume call's paging settings are under test: none leaks in from the test's environment.
  for (const char* v : {"UFFDLAZY_PREFETCH", "UFFDLAZY_READAHEAD", "UFFDLAZY_WS", "UFFDLAZY_WS_RECORD"}) {
    if (!resume_env.count(v)) o.unset.push_back(v);
  }
  resumed = run_process(argv, o);
}

void ResumeCase::run_and_compare() {
  reference();
  ASSERT_EQ(expected.exit_code, expected_status) << expected.err;
  take_checkpoint();
  ASSERT_EQ(checkpoint.exit_code, 0) << checkpoint.out << checkpoint.err;
  ASSERT_NE(checkpoint.err.find("checkpoint " + image + " written"), std::string::npos) << checkpoint.err;
  resume();
  EXPECT_EQ(resumed.exit_code, expected_status) << resumed.err;
  EXPECT_EQ(resumed.signal, 0) << resumed.err;
  EXPECT_EQ(checkpoint.out + resumed.out, expected.out) << resumed.err;
  EXPECT_EQ(read_file(dir + "/log"), read_file(dir + "/ref-log"));
  EXPECT_EQ(read_file(dir + "/data"), read_file(dir + "/ref-data"));
  if (mapped) {
    EXPECT_EQ(read_file(dir + "/map"), read_file(dir + "/ref-map"));
  }
}

long ResumeCase::resumed_data_pages() const { return summary_field(summary_line(resumed.err), "data_pages"); }

long ResumeCase::resumed_field(const std::string& key) const { return summary_field(summary_line(resumed.err), key); }

}  // namespace uffdlazy::test
