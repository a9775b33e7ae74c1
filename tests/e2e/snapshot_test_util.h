// Helpers shared by the snapshot record/restore end-to-end tests: a temporary directory, file
// patching, the shim's snapshot lines parsed, and the pattern of tests/targets/snapshot_rules.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {

// A fresh directory under /tmp (mkdtemp), removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> list() const;  // names of the entries, sorted

 private:
  std::string path_;
};

bool file_exists(const std::string& path);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);
// A copy of `from` at `to` with `bytes` written at `offset`.
void copy_patched(const std::string& from, const std::string& to, uint64_t offset, const std::string& bytes);
// A copy of `from` at `to` with the byte at `offset` XORed with 0xff.
void copy_flipped(const std::string& from, const std::string& to, uint64_t offset);

size_t count_of(const std::string& haystack, const std::string& needle);

// "uffdlazy: snapshot FILE written: R regions, P pages (D data, Z zero, U duplicate, A absent), N bytes"
struct RecordLine {
  bool found = false;
  long regions = -1, pages = -1, data = -1, zero = -1, duplicate = -1, absent = -1, bytes = -1;
};
RecordLine record_line(const std::string& err, const std::string& file);

// "uffdlazy: restore FILE: regions matched=M of N, pages served=S, never touched=T, dropped=D"
struct RestoreLine {
  bool found = false;
  long matched = -1, regions = -1, served = -1, never_touched = -1, dropped = -1;
};
RestoreLine restore_line(const std::string& err, const std::string& file);

// `uffdlazy record -o FILE OPTIONS -- PROGRAM`
ProcessResult record(const std::string& file, const std::vector<std::string>& options,
                     const std::vector<std::string>& program, const RunOptions& opt = {});
// `uffdlazy restore FILE OPTIONS -- PROGRAM`
ProcessResult restore(const std::string& file, const std::vector<std::string>& options,
                      const std::vector<std::string>& program, const RunOptions& opt = {});

// Runs argv through /bin/sh, sending signal `sig_name` (e.g. "USR2") to it once the program has
// created `ready_file`; the result is the program's own (sh waits for it and passes its status on).
// `program_env` is set for the program only, not for sh (put LD_PRELOAD there, not in
// opt.with_shim: a shim in sh would take the signal and keep the UFFDLAZY_ variables meant for the
// program).
ProcessResult run_signalled_when_ready(const std::vector<std::string>& argv, const std::string& ready_file,
                                       const std::string& sig_name,
                                       const std::map<std::string, std::string>& program_env = {},
                                       const RunOptions& opt = {});

// The pattern of snapshot_rules (see the target): region r, page p.
namespace rules {
constexpr int kRegions = 7;
extern const int kPages[kRegions];  // 96, 64, 80, 64, 64, 64, 64
enum class Kind { kAbsent, kZero, kDup0, kDup1, kData };
Kind kind_of(int r, uint64_t p);
bool owed(int r, uint64_t p);  // stored in the snapshot (not absent)
uint64_t data_tag(int r, uint64_t p);  // word 0 of a data page
}  // namespace rules

}  // namespace uffdlazy::test
