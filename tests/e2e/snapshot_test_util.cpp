#include "tests/e2e/snapshot_test_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace uffdlazy::test {

namespace {

void remove_tree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* e = readdir(d)) {
        if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
        remove_tree(path + "/" + e->d_name);
      }
      closedir(d);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

std::string line_starting(const std::string& err, const std::string& prefix) {
  size_t pos = err.find(prefix);
  if (pos == std::string::npos) return "";
  size_t end = err.find('\n', pos);
  return err.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/uffdlazy-snapshot-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() { remove_tree(path_); }

std::vector<std::string> TempDir::list() const {
  std::vector<std::string> names;
  if (DIR* d = opendir(path_.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.push_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), std::streamsize(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

void copy_patched(const std::string& from, const std::string& to, uint64_t offset, const std::string& bytes) {
  std::string data = read_file(from);
  if (offset + bytes.size() > data.size()) throw std::runtime_error("patch beyond the end of " + from);
  data.replace(offset, bytes.size(), bytes);
  write_file(to, data);
}

void copy_flipped(const std::string& from, const std::string& to, uint64_t offset) {
  std::string data = read_file(from);
  if (offset >= data.size()) throw std::runtime_error("flip beyond the end of " + from);
  data[offset] = char(data[offset] ^ 0xff);
  write_file(to, data);
}

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) n++;
  return n;
}

RecordLine record_line(const std::string& err, const std::string& file) {
  RecordLine r;
  std::string line = line_starting(err, "uffdlazy: snapshot " + file + " written: ");
  if (line.empty()) return r;
  const char* rest = line.c_str() + ("uffdlazy: snapshot " + file + " written: ").size();
  r.found = std::sscanf(rest, "%ld regions, %ld pages (%ld data, %ld zero, %ld duplicate, %ld absent), %ld bytes",
                        &r.regions, &r.pages, &r.data, &r.zero, &r.duplicate, &r.absent, &r.bytes) == 7;
  return r;
}

RestoreLine restore_line(const std::string& err, const std::string& file) {
  RestoreLine r;
  std::string line = line_starting(err, "uffdlazy: restore " + file + ": ");
  if (line.empty()) return r;
  const char* rest = line.c_str() + ("uffdlazy: restore " + file + ": ").size();
  r.found = std::sscanf(rest, "regions matched=%ld of %ld, pages served=%ld, never touched=%ld, dropped=%ld",
                        &r.matched, &r.regions, &r.served, &r.never_touched, &r.dropped) == 5;
  return r;
}

ProcessResult record(const std::string& file, const std::vector<std::string>& options,
                     const std::vector<std::string>& program, const RunOptions& opt) {
  std::vector<std::string> argv = {cli_path(), "record", "-o", file};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  return run_process(argv, opt);
}

ProcessResult restore(const std::string& file, const std::vector<std::string>& options,
                      const std::vector<std::string>& program, const RunOptions& opt) {
  std::vector<std::string> argv = {cli_path(), "restore", file};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  return run_process(argv, opt);
}

namespace {
std::string shell_quoted(const std::string& v) {
  std::string quoted = "'";
  for (char c : v) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}
}  // namespace

ProcessResult run_signalled_when_ready(const std::vector<std::string>& argv, const std::string& ready_file,
                                       const std::string& sig_name,
                                       const std::map<std::string, std::string>& program_env, const RunOptions& opt) {
  std::string assignments;
  for (const auto& [k, v] : program_env) assignments += k + "=" + shell_quoted(v) + " ";
  // The program is started in the background, so sh knows its pid ("uffdlazy record" execs it,
  // keeping the pid); `wait` returns its exit status. sh polls for the program's own signal that
  // it is ready, however long it takes to get there.
  std::vector<std::string> sh = {"/bin/sh", "-c",
                                 assignments + "\"$@\" & pid=$!; while [ ! -e " + shell_quoted(ready_file) +
                                     " ]; do kill -0 $pid 2>/dev/null || break; sleep 0.01; done; kill -" + sig_name +
                                     " $pid 2>/dev/null; wait $pid",
                                 "sh"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  return run_process(sh, opt);
}

namespace rules {

const int kPages[kRegions] = {96, 64, 80, 64, 64, 64, 64};

Kind kind_of(int r, uint64_t p) {
  switch ((p + 3 * uint64_t(r)) % 16) {
    case 15: return Kind::kAbsent;
    case 7: return Kind::kZero;
    case 3: return Kind::kDup0;
    case 11: return Kind::kDup1;
    default: return Kind::kData;
  }
}

bool owed(int r, uint64_t p) { return kind_of(r, p) != Kind::kAbsent; }

uint64_t data_tag(int r, uint64_t p) { return 0xD47A000000000000ull | (uint64_t(r) << 16) | p; }

}  // namespace rules

}  // namespace uffdlazy::test
