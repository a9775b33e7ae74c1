// Restoring faster than on demand, end to end with snapshot_rules: every scenario of
// `snapshot_rules check` under readahead alone, the background fill of everything (prefetch all)
// and the replay of a recorded working set (prefetch ws), each with the exact page check of the
// target and an account in which every owed page was served or dropped, never both, never
// neither. Then the working set itself: what a run records, what replaying it saves (blocking
// faults), and a working set that does not belong to the snapshot, refused before main().
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/working_set.h"
#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

std::string rules() { return target_path("snapshot_rules"); }

// The shim sees only the program's own mmap calls, not libc's (malloc's arenas, stdio buffers):
// the fault counts below are then the restore's alone, exactly.
RunOptions own_mappings_only() {
  RunOptions opt;
  opt.env = {{"UFFDLAZY_INTERCEPT", "symbols"}};
  return opt;
}

// One recording of `snapshot_rules fill` and the working set of a restored `check all` (every
// owed page, in region order), shared by the tests below.
struct Recorded {
  TempDir dir;
  std::string snap = dir.file("rules.snap");
  std::string ws_all = dir.file("all.ws");
  ProcessResult recording, ws_run;
  Recorded() {
    RunOptions opt;
    opt.env = {{"UFFDLAZY_FAULT_AROUND", "1"}};
    recording = record(snap, {}, {rules(), "fill"}, opt);
    ws_run = restore(snap, {"--ws-record", ws_all}, {rules(), "check", "all"});
  }
};

Recorded& recorded() {
  static Recorded r;
  return r;
}

long owed_total() {
  long n = 0;
  for (int r = 0; r < rules::kRegions; r++)
    for (int p = 0; p < rules::kPages[r]; p++) n += rules::owed(r, uint64_t(p));
  return n;
}

struct Range {
  int region, first, end;
};

struct Scenario {
  std::string name;
  std::string line;           // the scenario's own line
  std::vector<Range> zeroed;  // pages that read zeros after the scenario
  std::vector<Range> grown;   // pages added to a region
};

// What `snapshot_rules check NAME` prints when every page is right.
std::string expected_output(const Scenario& s) {
  std::string out = s.line.empty() ? "" : s.line + "\n";
  long total = 0, total_zeroed = 0;
  for (int r = 0; r < rules::kRegions; r++) {
    long pages = rules::kPages[r], zeroed = 0;
    for (const Range& g : s.grown) pages += g.region == r ? g.end - g.first : 0;
    for (const auto* list : {&s.zeroed, &s.grown})
      for (const Range& g : *list) zeroed += g.region == r ? g.end - g.first : 0;
    out += "region " + std::to_string(r) + ": pages=" + std::to_string(pages) + " recorded=" +
           std::to_string(pages - zeroed) + " zeroed=" + std::to_string(zeroed) + " ok\n";
    total += pages;
    total_zeroed += zeroed;
  }
  out += "check " + s.name + ": regions=7 pages=" + std::to_string(total) + " recorded=" +
         std::to_string(total - total_zeroed) + " zeroed=" + std::to_string(total_zeroed) +
         " mismatches=0 failures=0\n";
  return out;
}

const Scenario kScenarios[] = {
    {"all", "", {}, {}},
    {"dontneed", "dontneed: region 0 pages 16..47 dropped", {{0, 16, 48}}, {}},
    {"munmap_remap", "munmap_remap: region 1 pages 8..23 remapped", {{1, 8, 24}}, {}},
    {"mremap",
     "mremap: region 2 moved untouched, region 0 moved half served, region 3 grown to 96, region 4 cut to 32 and "
     "regrown",
     {{4, 32, 64}},
     {{3, 64, 96}}},
    {"fork", "fork: child ok", {}, {}},
    {"threads", "threads: 8 readers ok", {}, {}},
    {"twice", "twice: region 1 pages 0..3 read, dropped, read again", {{1, 0, 4}}, {}},
    {"claim_lock",
     "claim_lock: region 0 half served and locked, region 1 locked on fault, region 2 locked and grown to 96",
     {},
     {{2, 80, 96}}},
    {"claim_uffd", "claim_uffd: handler faults=6", {}, {}},
};

enum class Mode { kReadahead, kAll, kWorkingSet };

struct Case {
  Mode mode;
  Scenario scenario;
};

std::string mode_name(Mode m) {
  switch (m) {
    case Mode::kReadahead: return "readahead";
    case Mode::kAll: return "all";
    case Mode::kWorkingSet: return "ws";
  }
  return "?";
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (Mode m : {Mode::kReadahead, Mode::kAll, Mode::kWorkingSet})
    for (const Scenario& s : kScenarios) out.push_back({m, s});
  return out;
}

class RestorePrefetchScenario : public ::testing::TestWithParam<Case> {};

TEST_P(RestorePrefetchScenario, EveryPageAsRecordedOrDroppedAndEachOwedPageAccountedOnce) {
  const Case& c = GetParam();
  Recorded& rec = recorded();
  ASSERT_EQ(rec.recording.exit_code, 0) << rec.recording.err;
  ASSERT_EQ(rec.ws_run.exit_code, 0) << rec.ws_run.out << rec.ws_run.err;
  std::vector<std::string> options = {"--stats"};
  switch (c.mode) {
    case Mode::kReadahead: options.insert(options.end(), {"--prefetch", "none"}); break;
    case Mode::kAll: options.insert(options.end(), {"--prefetch", "all"}); break;
    case Mode::kWorkingSet: options.insert(options.end(), {"--prefetch", "ws", "--ws", rec.ws_all}); break;
  }
  ProcessResult res = restore(rec.snap, options, {rules(), "check", c.scenario.name}, own_mappings_only());
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.signal, 0) << res.err;
  EXPECT_EQ(res.out, expected_output(c.scenario)) << res.err;
  EXPECT_EQ(count_of(res.err, "uffdlazy: restore "), 1u) << res.err;
  RestoreLine line = restore_line(res.err, rec.snap);
  ASSERT_TRUE(line.found) << res.err;
  EXPECT_EQ(line.matched, 7);
  // The check reads every page it did not drop: each owed page was served (by a fault, readahead
  // or the fill) or dropped first, whichever came first.
  EXPECT_EQ(line.served + line.dropped, owed_total()) << res.err;
  EXPECT_EQ(line.never_touched, line.dropped) << res.err;
  const std::string stats = summary_line(res.err);
  ASSERT_FALSE(stats.empty()) << res.err;
  const long prefetched = summary_field(stats, "prefetched");
  // Without prefetch nothing is installed unasked, except the fill before a fork, or before the
  // program takes a range for itself (claim_*: the shim steps aside there).
  if (c.mode == Mode::kReadahead && c.scenario.name != "fork" && c.scenario.name.rfind("claim_", 0) != 0) {
    EXPECT_EQ(prefetched, 0) << stats;
  }
  if (c.mode == Mode::kWorkingSet && c.scenario.name == "all") {
    // Replayed before main() reads anything: every owed page; only the 31 never-recorded (absent)
    // pages fault, each a zero page on its own.
    EXPECT_EQ(prefetched, owed_total()) << stats;
    EXPECT_EQ(summary_field(stats, "requests"), 31) << stats;
    EXPECT_EQ(summary_field(stats, "faults"), 31) << stats;
  }
}

INSTANTIATE_TEST_SUITE_P(RestorePrefetch, RestorePrefetchScenario, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return mode_name(i.param.mode) + "_" + i.param.scenario.name;
                         });

// Pages `check partial` reads: every third page of every region, region after region.
long partial_owed() {
  long n = 0;
  for (int r = 0; r < rules::kRegions; r++)
    for (int p = 0; p < rules::kPages[r]; p += 3) n += rules::owed(r, uint64_t(p));
  return n;
}
long partial_absent() {
  long n = 0;
  for (int r = 0; r < rules::kRegions; r++)
    for (int p = 0; p < rules::kPages[r]; p += 3) n += !rules::owed(r, uint64_t(p));
  return n;
}

TEST(RestoreWorkingSet, RecordsExactlyTheOwedPagesTouchedInFirstTouchOrder) {
  Recorded& rec = recorded();
  ASSERT_EQ(rec.recording.exit_code, 0) << rec.recording.err;
  const std::string ws = rec.dir.file("partial.ws");
  ProcessResult res =
      restore(rec.snap, {"--ws-record", ws, "--stats"}, {rules(), "check", "partial"}, own_mappings_only());
  ASSERT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, "partial: every third page read\ncheck partial: failures=0\n");
  // Every third page is never next to the one before: one run per page.
  const std::string line = "uffdlazy: working set " + ws + " written: " + std::to_string(partial_owed()) +
                           " pages in " + std::to_string(partial_owed()) + " runs\n";
  EXPECT_NE(res.err.find(line), std::string::npos) << res.err;
  // Recording sees every touch: nothing was read ahead or prefetched.
  const std::string stats = summary_line(res.err);
  EXPECT_EQ(summary_field(stats, "readahead"), 0) << stats;
  EXPECT_EQ(summary_field(stats, "prefetched"), 0) << stats;
  EXPECT_EQ(summary_field(stats, "requests"), partial_owed() + partial_absent()) << stats;

  snap::SnapshotReader snapshot;
  ASSERT_TRUE(snapshot.open(rec.snap.c_str()).ok());
  snap::WorkingSetReader reader;
  snap::WsStatus st = reader.open(ws.c_str(), snapshot);
  ASSERT_TRUE(st.ok()) << int(st.error);
  ASSERT_EQ(reader.run_count(), uint64_t(partial_owed()));
  // Region after region (each region's pages together, in increasing order), every third page.
  std::map<uint32_t, uint64_t> last;
  uint32_t current = UINT32_MAX;
  std::vector<uint32_t> order;
  for (uint64_t i = 0; i < reader.run_count(); i++) {
    const SourceRun& r = reader.runs()[i];
    EXPECT_EQ(r.pages, 1u);
    EXPECT_EQ(r.first_page % 3, 0u) << "run " << i;
    if (r.source != current) {
      EXPECT_EQ(last.count(r.source), 0u) << "region " << r.source << " touched again after another one";
      current = r.source;
      order.push_back(r.source);
    } else {
      EXPECT_GT(r.first_page, last[r.source]) << "run " << i;
    }
    last[r.source] = r.first_page;
  }
  EXPECT_EQ(order.size(), 7u);
}

TEST(RestoreWorkingSet, ReplayCutsTheBlockingFaultsToTheNeverRecordedPages) {
  Recorded& rec = recorded();
  ASSERT_EQ(rec.recording.exit_code, 0) << rec.recording.err;
  const std::string ws = rec.dir.file("partial-replay.ws");
  ProcessResult first = restore(rec.snap, {"--ws-record", ws}, {rules(), "check", "partial"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  ProcessResult without = restore(rec.snap, {"--prefetch", "none", "--readahead", "1", "--stats"},
                                  {rules(), "check", "partial"}, own_mappings_only());
  for (const char* mode : {"ws", "all"}) {
    SCOPED_TRACE(mode);
    ProcessResult with = restore(rec.snap, {"--ws", ws, "--prefetch", mode, "--stats"}, {rules(), "check", "partial"},
                                 own_mappings_only());
    ASSERT_EQ(with.exit_code, 0) << with.out << with.err;
    EXPECT_EQ(with.out, without.out);
    const std::string stats = summary_line(with.err);
    // The working set was in place before the program read it: only the pages that were never
    // recorded (absent, zero-filled on their own) fault.
    EXPECT_EQ(summary_field(stats, "requests"), partial_absent()) << stats;
    EXPECT_GE(summary_field(stats, "prefetched"), partial_owed()) << stats;
    if (std::string(mode) == "ws") {
      EXPECT_EQ(summary_field(stats, "prefetched"), partial_owed()) << stats;
    }
  }
  const std::string base = summary_line(without.err);
  EXPECT_EQ(summary_field(base, "requests"), partial_owed() + partial_absent()) << base;
}

TEST(RestoreWorkingSet, TheReportCountsPrefetchedAndReadaheadPages) {
  Recorded& rec = recorded();
  ASSERT_EQ(rec.ws_run.exit_code, 0) << rec.ws_run.err;
  const std::string report = rec.dir.file("ws-report.json");
  ProcessResult res = restore(rec.snap, {"--ws", rec.ws_all, "--prefetch", "ws", "--report", report},
                              {rules(), "check", "all"});
  ASSERT_EQ(res.exit_code, 0) << res.out << res.err;
  const std::string json = read_file(report);
  EXPECT_NE(json.find("\"prefetched_pages\":" + std::to_string(owed_total())), std::string::npos) << json.substr(0, 600);
  EXPECT_NE(json.find("\"readahead_pages\":0"), std::string::npos) << json.substr(0, 600);
  ProcessResult report_cmd = run_process({cli_path(), "report", report});
  EXPECT_EQ(report_cmd.exit_code, 0) << report_cmd.err;
}

// Both routes must refuse the working set the same way: status 2, nothing run, one clear line.
void expect_ws_refused(const std::string& snap, const std::string& ws, const std::string& problem) {
  RunOptions env_route;
  env_route.with_shim = true;
  env_route.env = {{"UFFDLAZY_SNAPSHOT", snap}, {"UFFDLAZY_WS", ws}};
  const ProcessResult results[2] = {restore(snap, {"--ws", ws}, {rules(), "check", "all"}),
                                    run_process({rules(), "check", "all"}, env_route)};
  for (const ProcessResult& r : results) {
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.out, "") << "the program ran";
    EXPECT_EQ(r.err, "uffdlazy: " + ws + ": " + problem + "\n");
  }
}

TEST(RestoreWorkingSet, AWorkingSetOfAnotherSnapshotIsRefusedBeforeTheProgramRuns) {
  Recorded& rec = recorded();
  ASSERT_EQ(rec.ws_run.exit_code, 0) << rec.ws_run.err;
  // The same program recorded again: the same regions, the same contents, another snapshot.
  const std::string other = rec.dir.file("other.snap");
  RunOptions opt;
  opt.env = {{"UFFDLAZY_FAULT_AROUND", "1"}};
  ASSERT_EQ(record(other, {}, {rules(), "fill"}, opt).exit_code, 0);
  expect_ws_refused(other, rec.ws_all,
                    "this working set was recorded from another snapshot, not " + other +
                        " (record it again with --ws-record while restoring that snapshot)");
}

TEST(RestoreWorkingSet, ADamagedOrMissingWorkingSetIsRefused) {
  Recorded& rec = recorded();
  ASSERT_EQ(rec.ws_run.exit_code, 0) << rec.ws_run.err;
  const std::string bad = rec.dir.file("damaged.ws");
  copy_flipped(rec.ws_all, bad, sizeof(snap::WorkingSetHeader) + 20);
  expect_ws_refused(rec.snap, bad, "working-set checksum mismatch (the file is damaged)");
  expect_ws_refused(rec.snap, rec.dir.file("missing.ws"),
                    "cannot open the working set: No such file or directory (ENOENT)");
  expect_ws_refused(rec.snap, rec.snap, "not a uffdlazy working-set file (bad magic)");
}

TEST(RestoreWorkingSet, RecordingWithPrefetchOrReadaheadIsRefused) {
  Recorded& rec = recorded();
  ASSERT_EQ(rec.recording.exit_code, 0) << rec.recording.err;
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--prefetch", "all"}, std::vector<std::string>{"--readahead", "64"}}) {
    std::vector<std::string> options = {"--ws-record", rec.dir.file("never.ws")};
    options.insert(options.end(), extra.begin(), extra.end());
    ProcessResult r = restore(rec.snap, options, {rules(), "check", "all"});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("UFFDLAZY_WS_RECORD needs every touched page to fault"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(file_exists(rec.dir.file("never.ws")));
}

}  // namespace
}  // namespace uffdlazy::test
