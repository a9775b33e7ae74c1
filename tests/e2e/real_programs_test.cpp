// Real programs nobody here wrote, run once plainly and once under the shim (UFFDLAZY_STRICT=1, so
// a run that quietly fell back to plain paging cannot pass): each must exit 0 both times, print the
// same bytes on stdout (and on stderr, apart from the shim's summary line), and the shim must
// account for its work in the summary line.
//
// Each also asserts a minimum share of its anonymous memory that the shim registered, sampled at
// its peak (the coverage probe reads /proc/PID/smaps while it runs): python3 and node map their
// heaps with mmap() themselves; sqlite3, sort, xz, gawk and perl allocate through glibc's malloc,
// whose own mmap/brk calls the shim sees by patching libc (intercept=libc). What stays unseen is the main
// stack, libc's and ld.so's own data, and pages of file mappings written by relocation; the small
// workloads of sqlite3 and sort here (12 and 4 MiB) make that fixed part weigh more than in
// scripts/coverage.sh (bench/COVERAGE.md).
//
// The interpreters and tools are the system's (scripts/setup.sh installs them). A missing one is a
// failure, not a skip: a suite that silently tests less is worse than one that says why it can't.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"

namespace uffdlazy::test {
namespace {

constexpr int kTimeout = 60;

::testing::AssertionResult installed(const std::string& path) {
  if (access(path.c_str(), X_OK) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << path << " is not installed (or not executable); run scripts/setup.sh";
}

std::string data_file(const std::string& name) {
  return std::string(UFFDLAZY_SOURCE_DIR) + "/tests/data/real_programs/" + name;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016" PRIx64, v);
  return b;
}

// Compares two (possibly large) outputs exactly; on a difference, says where instead of dumping both.
::testing::AssertionResult same_bytes(const std::string& plain, const std::string& shim) {
  if (plain == shim) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < plain.size() && i < shim.size() && plain[i] == shim[i]) i++;
  size_t from = i < 80 ? 0 : i - 80;
  return ::testing::AssertionFailure()
         << "outputs differ: plain " << plain.size() << " bytes (fnv " << hex64(fnv1a(plain)) << "), shim "
         << shim.size() << " bytes (fnv " << hex64(fnv1a(shim)) << "), first difference at byte " << i
         << "\n--- plain from byte " << from << ":\n" << plain.substr(from, 200)
         << "\n--- shim from byte " << from << ":\n" << shim.substr(from, 200);
}

// stderr without the shim's summary lines: what the program itself printed.
std::string without_summaries(const std::string& err) {
  std::string out;
  size_t pos = 0;
  while (pos < err.size()) {
    size_t end = err.find('\n', pos);
    size_t next = end == std::string::npos ? err.size() : end + 1;
    if (err.compare(pos, 14, "uffdlazy: pid=") != 0) out.append(err, pos, next - pos);
    pos = next;
  }
  return out;
}

size_t count_summaries(const std::string& err) {
  size_t n = 0;
  while (!summary_line(err, n).empty()) n++;
  return n;
}

struct Runs {
  ProcessResult plain;
  ProcessResult shim;
  std::string summary;
  // Under the shim, at the sampled moment with the most anonymous memory: the share of it lying in
  // mappings registered with the userfaultfd (smaps VmFlags um), in percent.
  double registered_share = -1;
  long anonymous_kb = 0;
};

long probe_field(const std::string& line, const std::string& key) {
  size_t p = line.find(key + "=");
  return p == std::string::npos ? -1 : std::strtol(line.c_str() + p + key.size() + 1, nullptr, 10);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Runs argv plainly and under the shim with the same environment and stdin, and checks everything
// the two runs must share. The caller adds what it expects of the summary.
Runs run_both(const std::string& name, const std::vector<std::string>& argv, RunOptions opt = {}) {
  Runs r;
  opt.timeout_seconds = kTimeout;
  opt.with_shim = false;
  r.plain = run_process(argv, opt);
  // Under the shim, through the coverage probe (bench/targets/coverage_probe.cpp), which samples the
  // program's smaps while it runs; the probe itself runs without the shim.
  opt.env["UFFDLAZY_STATS"] = "1";
  opt.env["UFFDLAZY_STRICT"] = "1";
  char out_path[] = "/tmp/uffdlazy-real-out-XXXXXX";
  int out_fd = mkstemp(out_path);
  if (out_fd >= 0) close(out_fd);
  std::vector<std::string> probed = {UFFDLAZY_PROBE, "--smaps", out_path, "--", "env", "LD_PRELOAD=" + shim_path()};
  probed.insert(probed.end(), argv.begin(), argv.end());
  ProcessResult p = run_process(probed, opt);
  r.shim = p;
  r.shim.out = read_file(out_path);
  unlink(out_path);
  const long code = probe_field(p.out, "exit");
  r.shim.exit_code = code >= 0 && code < 128 ? int(code) : -1;
  r.shim.signal = code >= 128 ? int(code - 128) : 0;
  r.anonymous_kb = probe_field(p.out, "smaps_anon_kb");
  const long registered_kb = probe_field(p.out, "smaps_registered_kb");
  if (r.anonymous_kb > 0) r.registered_share = 100.0 * double(registered_kb) / double(r.anonymous_kb);
  r.summary = summary_line(r.shim.err);

  std::printf("[  summary ] %s: %s\n", name.c_str(), r.summary.empty() ? "(no summary line)" : r.summary.c_str());
  std::printf("[  summary ] %s: %.1f%% of %ld KiB anonymous memory registered at the sampled peak\n", name.c_str(),
              r.registered_share, r.anonymous_kb);
  ::testing::Test::RecordProperty(name + "_summary", r.summary);

  EXPECT_EQ(r.plain.exit_code, 0) << name << " failed without the shim (signal " << r.plain.signal
                                  << "):\n" << r.plain.err.substr(0, 4000);
  EXPECT_EQ(r.shim.exit_code, 0) << name << " failed under the shim (signal " << r.shim.signal << "):\n"
                                 << r.shim.err.substr(0, 4000);
  EXPECT_FALSE(r.plain.out.empty()) << name << " printed nothing; the comparison would prove nothing";
  EXPECT_TRUE(same_bytes(r.plain.out, r.shim.out)) << name << ": stdout differs under the shim";
  EXPECT_TRUE(same_bytes(r.plain.err, without_summaries(r.shim.err)))
      << name << ": stderr (apart from the summary line) differs under the shim";
  EXPECT_EQ(count_summaries(r.shim.err), 1u)
      << name << ": expected exactly one summary line on stderr under UFFDLAZY_STATS=1 (a program that "
      << "closes fd 2 before it exits, as GNU coreutils do, loses the line if the shim writes it to fd 2 "
      << "rather than to its own copy of stderr); stderr was:\n"
      << r.shim.err.substr(0, 4000);
  // STRICT=1 would have exited 3 without a userfaultfd; the summary must also say it was in use.
  if (!r.summary.empty()) {
    EXPECT_EQ(r.summary.find(" inactive "), std::string::npos) << r.summary;
    EXPECT_NE(r.summary.find(" uffd=userfaultfd(2)"), std::string::npos)
        << "running as root, the shim should get a full userfaultfd from the system call: " << r.summary;
    EXPECT_NE(r.summary.find(" intercept=libc"), std::string::npos) << r.summary;
  }
  return r;
}

// A private directory for generated input, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "uffdlazy-real-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// CPython: ~100 MB of ints, floats, tuples, strings, dicts, bytes; small objects come from
// pymalloc's 1 MiB arenas, mapped with mmap() and released with munmap() as they empty.
TEST(RealPrograms, Python3ObjectsAreByteIdentical) {
  const std::string python = "/usr/bin/python3";
  ASSERT_TRUE(installed(python));
  const std::string script = data_file("alloc_digest.py");
  ASSERT_EQ(access(script.c_str(), R_OK), 0) << script;
  RunOptions opt;
  opt.env["PYTHONHASHSEED"] = "0";
  opt.env["PYTHONDONTWRITEBYTECODE"] = "1";
  opt.unset = {"PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME"};
  Runs r = run_both("python3", {python, "-I", script}, opt);
  // The script ran to its end (a truncated run could still match a truncated one).
  EXPECT_NE(r.plain.out.find("\ndone 3\n"), std::string::npos) << r.plain.out;
  ASSERT_FALSE(r.summary.empty());
  EXPECT_GT(summary_field(r.summary, "faults"), 1000) << r.summary;
  EXPECT_GE(summary_field(r.summary, "regions"), 1) << r.summary;
  // Arenas freed by `del` are unmapped; the monitor must have seen those events.
  EXPECT_GE(summary_field(r.summary, "unmap"), 1) << r.summary;
  EXPECT_GE(r.registered_share, 95.0) << "of " << r.anonymous_kb << " KiB";
}

// SQLite in memory: 20000 INSERTs in one transaction, an index, aggregates and a sort. The test
// knows two of the answers itself, so the plain run is checked too, not only compared.
TEST(RealPrograms, Sqlite3InMemoryIsByteIdentical) {
  const std::string sqlite = "/usr/bin/sqlite3";
  ASSERT_TRUE(installed(sqlite));
  std::mt19937_64 rng(20240601);
  std::string sql =
      "PRAGMA cache_size = -65536;\n"
      "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, k INTEGER, payload TEXT);\n"
      "BEGIN;\n";
  const int rows = 20000;
  uint64_t sum_k = 0;
  for (int i = 0; i < rows; i++) {
    uint64_t k = rng() % 1000000;
    sum_k += k;
    char line[256];
    std::snprintf(line, sizeof line,
                  "INSERT INTO t(name, grp, k, payload) VALUES('n%06u', %u, %" PRIu64 ", printf('%%0120d', %d));\n",
                  unsigned(rng() % 1000000), unsigned(rng() % 64), k, i);
    sql += line;
  }
  sql +=
      "COMMIT;\n"
      "CREATE INDEX t_grp ON t(grp, k);\n"
      "CREATE TABLE big AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)\n"
      "  SELECT x, x * 7919 % 100003 AS y, hex(x * 31) AS h FROM c;\n"
      "SELECT 'count', count(*), sum(k) FROM t;\n"
      "SELECT grp, count(*), sum(k), min(name), max(name) FROM t GROUP BY grp ORDER BY grp;\n"
      "SELECT 'big', count(*), sum(y), max(h) FROM big;\n"
      "SELECT 'top', group_concat(name, ',') FROM (SELECT name FROM t ORDER BY k DESC, name LIMIT 20);\n"
      "SELECT 'join', count(*) FROM t JOIN big ON big.y = t.k % 100003;\n";
  RunOptions opt;
  opt.stdin_data = sql;
  Runs r = run_both("sqlite3", {sqlite, "-batch", ":memory:"}, opt);
  char expect[128];
  std::snprintf(expect, sizeof expect, "count|%d|%" PRIu64 "\n", rows, sum_k);
  EXPECT_NE(r.plain.out.find(expect), std::string::npos) << "expected '" << expect << "' in:\n"
                                                         << r.plain.out.substr(0, 2000);
  EXPECT_NE(r.plain.out.find("big|200000|"), std::string::npos) << r.plain.out.substr(0, 2000);
  ASSERT_FALSE(r.summary.empty());
  // sqlite3 allocates with malloc: its page cache and sorter memory come from glibc's own mmap and
  // brk calls, seen through the patched libc.
  EXPECT_GT(summary_field(r.summary, "faults"), 1000) << r.summary;
  EXPECT_GE(summary_field(r.summary, "regions"), 1) << r.summary;
  EXPECT_GE(r.registered_share, 93.0) << "of " << r.anonymous_kb << " KiB";
}

// GNU sort on 300k generated lines with a small buffer, so it sorts in runs, spills them to
// temporary files and merges them with two threads. Its output must be the lines in byte order.
TEST(RealPrograms, SortOfALargeFileIsByteIdentical) {
  const std::string sort = "/usr/bin/sort";
  ASSERT_TRUE(installed(sort));
  TempDir dir;
  std::mt19937_64 rng(7);
  std::vector<std::string> lines;
  const size_t n = 300000;
  lines.reserve(n);
  for (size_t i = 0; i < n; i++) {
    char b[96];
    // Varying lengths and some repeated keys, so ties and prefixes occur.
    uint64_t key = rng() % (i % 5 == 0 ? 1000 : ~0ull);
    std::snprintf(b, sizeof b, "%" PRIx64 " %s%" PRIu64, key, std::string(rng() % 24, 'z').c_str(), rng() % 100000);
    lines.push_back(b);
  }
  std::string input;
  for (const auto& l : lines) input += l + "\n";
  const std::string file = dir.path() + "/input.txt";
  {
    std::ofstream f(file, std::ios::binary);
    f << input;
    ASSERT_TRUE(f.good()) << file;
  }
  std::sort(lines.begin(), lines.end());  // std::string compares as unsigned bytes, like LC_ALL=C
  std::string expected;
  for (const auto& l : lines) expected += l + "\n";

  RunOptions opt;
  opt.env["LC_ALL"] = "C";
  opt.env["TMPDIR"] = dir.path();
  Runs r = run_both("sort", {sort, "--parallel=2", "-S", "4M", "-T", dir.path(), file}, opt);
  EXPECT_EQ(fnv1a(r.plain.out), fnv1a(expected)) << "plain sort did not produce the lines in byte order";
  EXPECT_TRUE(same_bytes(expected, r.plain.out)) << "plain sort";
  EXPECT_EQ(fnv1a(r.shim.out), fnv1a(expected)) << "sort under the shim did not produce the lines in byte order";
  EXPECT_TRUE(same_bytes(expected, r.shim.out)) << "sort under the shim";
  // run_both requires the summary line: GNU coreutils close stderr in an atexit handler (gnulib's
  // close_stdout), before the shim's destructor runs, so the line must go to the shim's own copy
  // of stderr, not to fd 2.
  if (!r.summary.empty()) {
    EXPECT_GT(summary_field(r.summary, "faults"), 500) << r.summary;
    EXPECT_GE(summary_field(r.summary, "regions"), 1) << r.summary;
  }
  EXPECT_GE(r.registered_share, 90.0) << "of " << r.anonymous_kb << " KiB";
}

// xz -7: its 8 MiB dictionary and match finder (~94 MiB) come from glibc's malloc, mmapped inside
// libc. The compressed stream must be the same bytes, and decompress to the input.
TEST(RealPrograms, XzCompressionIsByteIdentical) {
  const std::string xz = "/usr/bin/xz";
  ASSERT_TRUE(installed(xz));
  TempDir dir;
  std::mt19937_64 rng(11);
  std::string input;
  while (input.size() < (2u << 20)) {
    char b[64];
    std::snprintf(b, sizeof b, "%08" PRIx64 " line %" PRIu64 "\n", rng() % 0xffffffffu, rng() % 5000);
    input += b;
  }
  const std::string file = dir.path() + "/input.txt";
  {
    std::ofstream f(file, std::ios::binary);
    f << input;
    ASSERT_TRUE(f.good()) << file;
  }
  Runs r = run_both("xz", {xz, "-7", "-T1", "-c", file});
  RunOptions back;
  back.stdin_data = r.shim.out;
  ProcessResult d = run_process({xz, "-d", "-c"}, back);
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(d.out == input) << "the stream written under the shim does not decompress to the input";
  ASSERT_FALSE(r.summary.empty());
  EXPECT_GT(summary_field(r.summary, "faults"), 1000) << r.summary;
  EXPECT_GE(r.registered_share, 95.0) << "of " << r.anonymous_kb << " KiB";
}

// gawk building a 300 000-entry associative array: its nodes and strings come from malloc's heap
// (brk) and mmapped chunks. The sum is known to the test.
TEST(RealPrograms, GawkArraysAreByteIdentical) {
  const std::string gawk = "/usr/bin/gawk";
  ASSERT_TRUE(installed(gawk));
  Runs r = run_both("gawk", {gawk, "BEGIN { for (i = 0; i < 300000; i++) a[i] = sprintf(\"%07d-%s\", i * 7, "
                                   "substr(\"abcdefghij\", 1 + i % 10)); n = 0; for (k in a) n += length(a[k]); "
                                   "print length(a), n }"});
  long expect_chars = 0;
  for (long i = 0; i < 300000; i++) expect_chars += 8 + (10 - i % 10);
  EXPECT_EQ(r.plain.out, "300000 " + std::to_string(expect_chars) + "\n");
  ASSERT_FALSE(r.summary.empty());
  EXPECT_GT(summary_field(r.summary, "faults"), 1000) << r.summary;
  EXPECT_GE(r.registered_share, 95.0) << "of " << r.anonymous_kb << " KiB";
}

// perl building a 200 000-key hash of strings: perl's own allocator is off in Debian's build, so
// everything comes from glibc's malloc.
TEST(RealPrograms, PerlHashesAreByteIdentical) {
  const std::string perl = "/usr/bin/perl";
  ASSERT_TRUE(installed(perl));
  RunOptions opt;
  opt.env["PERL_HASH_SEED"] = "0";
  opt.env["PERL_PERTURB_KEYS"] = "0";
  Runs r = run_both("perl", {perl, "-e", "my %h; $h{$_} = ('v' x 50) . $_ for 1 .. 200000; my $n = 0; "
                                         "$n += length($h{$_}) for keys %h; print scalar(keys %h), ' ', $n, qq(\\n);"},
                    opt);
  long expect_chars = 0;
  for (long i = 1; i <= 200000; i++) expect_chars += 50 + long(std::to_string(i).size());
  EXPECT_EQ(r.plain.out, "200000 " + std::to_string(expect_chars) + "\n");
  ASSERT_FALSE(r.summary.empty());
  EXPECT_GT(summary_field(r.summary, "faults"), 1000) << r.summary;
  EXPECT_GE(r.registered_share, 95.0) << "of " << r.anonymous_kb << " KiB";
}

// Node.js: V8 reserves its pointer-compression cage and maps heap pages with mmap(), moves and
// frees them as the GC runs; Buffers and typed arrays live off-heap.
TEST(RealPrograms, NodeHeapIsByteIdentical) {
  const std::string node = "/usr/bin/node";
  ASSERT_TRUE(installed(node));
  const std::string script = data_file("alloc_digest.js");
  ASSERT_EQ(access(script.c_str(), R_OK), 0) << script;
  RunOptions opt;
  opt.unset = {"NODE_OPTIONS", "NODE_PATH"};
  Runs r = run_both("node", {node, script}, opt);
  EXPECT_NE(r.plain.out.find("\ndone\n"), std::string::npos) << r.plain.out;
  ASSERT_FALSE(r.summary.empty());
  EXPECT_GT(summary_field(r.summary, "faults"), 1000) << r.summary;
  EXPECT_GE(summary_field(r.summary, "regions"), 1) << r.summary;
  EXPECT_GE(r.registered_share, 95.0) << "of " << r.anonymous_kb << " KiB";
}

}  // namespace
}  // namespace uffdlazy::test
