// One checkpoint/resume case of tests/targets/resume_target: the uninterrupted reference run
// (without the shim), the checkpointed run, the resumed run, and the comparison of what they
// printed and wrote.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {

struct ResumeCase {
  explicit ResumeCase(const std::string& name);

  std::unique_ptr<TempDir> tmp;
  std::string dir, image;
  std::vector<std::string> args;              // for every run (besides --log and --data)
  std::vector<std::string> checkpoint_extra;  // for the checkpointed run only (e.g. --signal-at)
  std::string at = "signal=USR2";
  std::string then = "stop";
  std::string input;                          // stdin of the reference and of the resume
  bool lazy = true;
  int expected_status = 0;
  std::vector<std::string> resume_wrapper;    // prepended to the resume command
  std::vector<std::string> resume_options;
  std::map<std::string, std::string> resume_env;  // added to the resume's environment
  ProcessResult expected, checkpoint, resumed;

  // log, data and (with mapped) the mapped file's name in dir.
  std::vector<std::string> target(const std::string& log, const std::string& data) const;
  bool mapped = false;  // also --mapped (ref-map / map)
  void reference();
  void take_checkpoint();  // stdin stays open and empty: a read blocks
  void resume();
  // All three, then: the checkpoint wrote an image and printed nothing of the program's (stop
  // mode), and stdout, the log, the data file and the status equal the reference's.
  void run_and_compare();
  long resumed_data_pages() const;  // data_pages= of the resumed run's summary line
  long resumed_field(const std::string& key) const;  // key= of the resumed run's summary line
};

RunOptions with_input(const std::string& data, bool keep_open);

}  // namespace uffdlazy::test
