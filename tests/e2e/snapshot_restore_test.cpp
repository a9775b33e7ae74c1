// Record and restore, end to end: snapshot_rules writes a known pattern (data, zero, duplicate and
// absent pages in seven regions from four call sites) and is recorded at exit; the file must hold
// exactly that pattern; then every scenario of `snapshot_rules check` runs under restore and must
// find every page as recorded (or zeros where the scenario dropped it), with the restore account
// at exit counting exactly the pages the scenario provoked.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/snapshot/snapshot_reader.h"
#include "tests/e2e/process_runner.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

using snap::PageKind;
using snap::SnapshotReader;

std::string rules() { return target_path("snapshot_rules"); }

// Pure on-demand serving (no readahead, no background fill): each page is served exactly when the
// program first touches it, so the restore account is exact. restore_prefetch_test.cpp runs the
// same scenarios with readahead and every prefetch mode.
const std::vector<std::string> kOnDemand = {"--prefetch", "none", "--readahead", "1"};

// The recording the tests restore: taken once. Fault-around is off in the recording run so that a
// page the pattern never touches is never filled as a neighbour of a touched one: it stays absent.
struct Recording {
  TempDir dir;
  std::string file = dir.file("rules.snap");
  ProcessResult result;
  Recording() {
    RunOptions opt;
    opt.env = {{"UFFDLAZY_FAULT_AROUND", "1"}};
    result = record(file, {}, {rules(), "fill"}, opt);
  }
};

// Made on first use; its directory is removed when the test program exits.
Recording& shared() {
  static Recording r;
  return r;
}

long owed_pages_total() {
  long n = 0;
  for (int r = 0; r < rules::kRegions; r++)
    for (int p = 0; p < rules::kPages[r]; p++) n += rules::owed(r, uint64_t(p));
  return n;
}

// Which region of the pattern a snapshot region is: the shared call site (four regions) by
// ordinal, the others by length. -1 if none fits.
std::vector<int> pattern_regions(const SnapshotReader& reader) {
  std::map<uint64_t, int> per_site;
  for (uint64_t i = 0; i < reader.region_count(); i++) per_site[reader.region(i).site_offset]++;
  std::vector<int> out;
  for (uint64_t i = 0; i < reader.region_count(); i++) {
    const snap::RegionRecord& rec = reader.region(i);
    const uint64_t pages = rec.alloc_length / reader.page_size();
    int r = -1;
    if (per_site[rec.site_offset] == 4) {
      // Ordinal 0 of that site is its small mapping, below the size threshold.
      r = rec.ordinal >= 1 && rec.ordinal <= 4 ? 2 + int(rec.ordinal) : -1;
    } else if (pages == 96) {
      r = 0;
    } else if (pages == 64) {
      r = 1;
    } else if (pages == 80) {
      r = 2;
    }
    out.push_back(r);
  }
  return out;
}

TEST(SnapshotRestore, RecordingHoldsExactlyThePattern) {
  Recording& rec = shared();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.out << rec.result.err;
  EXPECT_EQ(rec.result.out, "fill regions=7 done\n");
  // 496 pages in 7 regions: 372 unique + 2 first copies of the duplicate contents are data, the
  // other 60 duplicate-class pages duplicates, 31 zero, 31 never touched.
  RecordLine line = record_line(rec.result.err, rec.file);
  ASSERT_TRUE(line.found) << rec.result.err;
  EXPECT_EQ(line.regions, 7);
  EXPECT_EQ(line.pages, 496);
  EXPECT_EQ(line.data, 374);
  EXPECT_EQ(line.zero, 31);
  EXPECT_EQ(line.duplicate, 60);
  EXPECT_EQ(line.absent, 31);
  EXPECT_EQ(count_of(rec.result.err, "uffdlazy: snapshot "), 1u) << rec.result.err;

  ProcessResult verify = run_process({cli_path(), "verify", rec.file});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("ok (7 regions, 496 pages, 374 data blocks verified)"), std::string::npos) << verify.out;

  ProcessResult inspect = run_process({cli_path(), "inspect", "--json", rec.file});
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_EQ(count_of(inspect.out, "\"ordinal\":"), 7u) << inspect.out;
  EXPECT_NE(inspect.out.find("\"data_pages\":374,\"zero_pages\":31,\"duplicate_pages\":60,\"absent_pages\":31"),
            std::string::npos)
      << inspect.out;

  SnapshotReader reader;
  snap::ReadStatus st = reader.open(rec.file.c_str());
  ASSERT_TRUE(st.ok()) << snap::read_error_name(st.error);
  EXPECT_EQ(uint64_t(line.bytes), reader.file_size());
  ASSERT_EQ(reader.region_count(), 7u);
  const uint64_t ps = reader.page_size();

  // Four call sites, all in the target; one of them made four regions of one length, ordinals 1..4
  // (its ordinal 0 is a mapping too small to register, which still counts).
  std::map<uint64_t, std::set<uint64_t>> ordinals;
  for (uint64_t i = 0; i < reader.region_count(); i++) {
    snap::ModuleView m;
    ASSERT_TRUE(reader.region_module(i, &m)) << "region " << i << " has no call site";
    EXPECT_TRUE(std::string(m.path).ends_with("/snapshot_rules")) << m.path;
    EXPECT_EQ(reader.region(i).length, reader.region(i).alloc_length);
    ordinals[reader.region(i).site_offset].insert(reader.region(i).ordinal);
  }
  EXPECT_EQ(ordinals.size(), 4u);
  size_t shared_sites = 0;
  for (const auto& [site, ords] : ordinals) {
    if (ords.size() == 4) {
      shared_sites++;
      EXPECT_EQ(ords, (std::set<uint64_t>{1, 2, 3, 4}));
    } else {
      EXPECT_EQ(ords, std::set<uint64_t>{0});
    }
  }
  EXPECT_EQ(shared_sites, 1u);

  // Every page has the kind and content the pattern gave it.
  std::vector<int> which = pattern_regions(reader);
  std::set<int> seen;
  const uint8_t* dup_content[2] = {nullptr, nullptr};
  int dup_data_entries = 0, bad = 0;
  for (uint64_t i = 0; i < reader.region_count(); i++) {
    const int r = which[i];
    ASSERT_GE(r, 0) << "snapshot region " << i << " is not one of the pattern's";
    seen.insert(r);
    ASSERT_EQ(reader.region(i).page_count, uint64_t(rules::kPages[r]));
    for (uint64_t p = 0; p < reader.region(i).page_count; p++) {
      snap::PageRef ref = reader.page(i, p);
      const rules::Kind k = rules::kind_of(r, p);
      bool ok = false;
      switch (k) {
        case rules::Kind::kAbsent: ok = ref.kind == PageKind::kAbsent; break;
        case rules::Kind::kZero: ok = ref.kind == PageKind::kZero; break;
        case rules::Kind::kData: {
          uint64_t w0 = 0;
          if (ref.kind == PageKind::kData) std::memcpy(&w0, ref.data, 8);
          ok = ref.kind == PageKind::kData && w0 == rules::data_tag(r, p);
          break;
        }
        case rules::Kind::kDup0:
        case rules::Kind::kDup1: {
          const int v = k == rules::Kind::kDup0 ? 0 : 1;
          ok = ref.kind == PageKind::kData || ref.kind == PageKind::kDuplicate;
          if (ok && !dup_content[v]) dup_content[v] = ref.data;
          ok = ok && std::memcmp(ref.data, dup_content[v], ps) == 0;
          dup_data_entries += ref.kind == PageKind::kData;
          break;
        }
      }
      if (!ok && bad++ < 10) ADD_FAILURE() << "pattern region " << r << " page " << p << " has kind " << int(ref.kind);
    }
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(dup_data_entries, 2);  // each duplicate content stored once
  ASSERT_TRUE(dup_content[0] && dup_content[1]);
  EXPECT_NE(std::memcmp(dup_content[0], dup_content[1], ps), 0);
}

TEST(SnapshotRestore, CheckWithoutRestoreFails) {
  // Without the snapshot every page reads zeros: the check must notice (it can fail).
  ProcessResult plain = run_process({rules(), "check", "all"});
  EXPECT_EQ(plain.exit_code, 1) << plain.out << plain.err;
  EXPECT_NE(plain.out.find("MISMATCH region 0 page 0: expected data, got zeros"), std::string::npos) << plain.out;
  EXPECT_EQ(plain.out.find("mismatches=0 "), std::string::npos) << plain.out;
  // The same under the shim without a snapshot: lazily paged, still zeros.
  RunOptions opt;
  opt.with_shim = true;
  ProcessResult shim = run_process({rules(), "check", "all"}, opt);
  EXPECT_EQ(shim.exit_code, 1) << shim.out << shim.err;
  EXPECT_EQ(shim.out, plain.out);
}

// ---- every scenario under restore ----

struct Range {
  int region;
  int first, end;  // pages [first, end)
};

struct Scenario {
  std::string name;
  std::string line;            // the scenario's own line, printed before the region lines
  std::vector<Range> zeroed;   // pages that must read zeros after the scenario
  std::vector<Range> dropped;  // owed pages dropped before anything served them
  std::vector<Range> grown;    // pages added to a region (they read zeros too)
};

std::string scenario_name(const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; }

long owed_in(const std::vector<Range>& ranges) {
  long n = 0;
  for (const Range& g : ranges)
    for (int p = g.first; p < g.end; p++) n += rules::owed(g.region, uint64_t(p));
  return n;
}

std::string expected_check_output(const Scenario& s) {
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

class SnapshotRestoreScenario : public ::testing::TestWithParam<Scenario> {};

TEST_P(SnapshotRestoreScenario, EveryPageAsRecordedOrDropped) {
  const Scenario& s = GetParam();
  Recording& rec = shared();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.err;
  ProcessResult res = restore(rec.file, kOnDemand, {rules(), "check", s.name});
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.signal, 0) << res.err;
  EXPECT_EQ(res.out, expected_check_output(s)) << res.err;

  // One account (a forked child must not print one), every region matched, and exactly the pages
  // the scenario touched served: each owed page once, unless it was dropped before its first touch.
  EXPECT_EQ(count_of(res.err, "uffdlazy: restore "), 1u) << res.err;
  RestoreLine line = restore_line(res.err, rec.file);
  ASSERT_TRUE(line.found) << res.err;
  const long owed = owed_pages_total();
  const long dropped = owed_in(s.dropped);
  EXPECT_EQ(line.matched, 7);
  EXPECT_EQ(line.regions, 7);
  EXPECT_GT(line.served, 0);
  EXPECT_EQ(line.served, owed - dropped);
  EXPECT_EQ(line.never_touched, dropped);
  EXPECT_EQ(line.dropped, dropped);
}

INSTANTIATE_TEST_SUITE_P(
    SnapshotRestore, SnapshotRestoreScenario,
    ::testing::Values(
        Scenario{"all", "", {}, {}, {}},
        // Region 0: 16..31 served, then 16..47 dropped.
        Scenario{"dontneed", "dontneed: region 0 pages 16..47 dropped", {{0, 16, 48}}, {{0, 32, 48}}, {}},
        // Region 1: 8..23 unmapped before any touch, fresh memory mapped there.
        Scenario{"munmap_remap", "munmap_remap: region 1 pages 8..23 remapped", {{1, 8, 24}}, {{1, 8, 24}}, {}},
        // Regions 2 and 0 moved (0 half served first), 3 grown by 32 pages, 4 cut to 32 and regrown.
        Scenario{"mremap",
                 "mremap: region 2 moved untouched, region 0 moved half served, region 3 grown to 96, region 4 "
                 "cut to 32 and regrown",
                 {{4, 32, 64}},
                 {{4, 32, 64}},
                 {{3, 64, 96}}},
        // Half served, then fork: everything owed is filled for the child, which checks it all.
        Scenario{"fork", "fork: child ok", {}, {}, {}},
        Scenario{"threads", "threads: 8 readers ok", {}, {}, {}},
        // Region 1 pages 0..3 served, dropped, read again: zeros, not served a second time.
        Scenario{"twice", "twice: region 1 pages 0..3 read, dropped, read again", {{1, 0, 4}}, {}, {}},
        // Locked memory (the shim steps aside): every page still owed is put in place first.
        Scenario{"claim_lock",
                 "claim_lock: region 0 half served and locked, region 1 locked on fault, region 2 locked and grown to 96",
                 {}, {}, {{2, 80, 96}}},
        // The program's own userfaultfd registers region 3 and pages 16..47 of region 4: its handler
        // gets only the 6 pages the recording never had (absent), every other page is in place.
        Scenario{"claim_uffd", "claim_uffd: handler faults=6", {}, {}, {}}),
    scenario_name);

// Every way of making a child, while every page is still owed: the child sees exactly the
// recording (or shares the parent's memory and has it served), the parent too, afterwards. A child
// that cannot get a userfaultfd of its own runs unpaged with complete memory instead of exiting.
class SnapshotRestoreChildren : public ::testing::TestWithParam<const char*> {};

TEST_P(SnapshotRestoreChildren, ChildSeesExactlyTheParentsMemory) {
  const std::string how = GetParam();
  Recording& rec = shared();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.err;
  ProcessResult res = restore(rec.file, {}, {rules(), "check", "fork_via", how});
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.signal, 0) << res.err;
  EXPECT_NE(res.out.find(how + ": child ok\n"), std::string::npos) << res.out << res.err;
  EXPECT_NE(res.out.find("mismatches=0 failures=0"), std::string::npos) << res.out << res.err;
  EXPECT_EQ(count_of(res.err, "uffdlazy: restore "), 1u) << res.err;
  RestoreLine line = restore_line(res.err, rec.file);
  ASSERT_TRUE(line.found) << res.err;
  EXPECT_EQ(line.served, owed_pages_total());
}

INSTANTIATE_TEST_SUITE_P(SnapshotRestore, SnapshotRestoreChildren,
                         ::testing::Values("_Fork", "clone", "vfork", "posix_spawn", "system", "fork_without_uffd"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           std::string n = i.param;
                           return n[0] == '_' ? n.substr(1) : n;
                         });

TEST(SnapshotRestore, EnvironmentRouteRestoresLikeTheCommand) {
  Recording& rec = shared();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.err;
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_SNAPSHOT", rec.file}};
  ProcessResult res = run_process({rules(), "check", "all"}, opt);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, expected_check_output(Scenario{"all", "", {}, {}, {}}));
  RestoreLine line = restore_line(res.err, rec.file);
  ASSERT_TRUE(line.found) << res.err;
  EXPECT_EQ(line.matched, 7);
  EXPECT_EQ(line.served, owed_pages_total());
  EXPECT_EQ(line.never_touched, 0);
  EXPECT_EQ(line.dropped, 0);
}

// ---- no ASLR ----

TEST(SnapshotRestore, NoAslrRoundTripMatchesByAddress) {
  TempDir dir;
  const std::string first = dir.file("noaslr.snap"), again = dir.file("again.snap");
  // Both runs with the same shim settings: the shim's own mappings are then the same too.
  RunOptions opt;
  opt.env = {{"UFFDLAZY_FAULT_AROUND", "1"}};
  ProcessResult rec = record(first, {"--no-aslr"}, {rules(), "fill"}, opt);
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  SnapshotReader a;
  ASSERT_TRUE(a.open(first.c_str()).ok());
  EXPECT_TRUE(a.header().flags & snap::kFlagNoAslr);
  ASSERT_EQ(a.region_count(), 7u);

  // Restored with ASLR off, and recorded again at exit: the regions sit where they sat.
  opt.env["UFFDLAZY_RECORD"] = again;
  ProcessResult res = restore(first, {"--no-aslr"}, {rules(), "check", "all"}, opt);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, expected_check_output(Scenario{"all", "", {}, {}, {}}));
  RestoreLine line = restore_line(res.err, first);
  ASSERT_TRUE(line.found) << res.err;
  EXPECT_EQ(line.matched, 7);
  EXPECT_EQ(line.regions, 7);
  EXPECT_EQ(line.served, owed_pages_total());

  SnapshotReader b;
  ASSERT_TRUE(b.open(again.c_str()).ok()) << res.err;
  std::set<std::pair<uint64_t, uint64_t>> ra, rb;
  for (uint64_t i = 0; i < a.region_count(); i++) ra.insert({a.region(i).start, a.region(i).length});
  for (uint64_t i = 0; i < b.region_count(); i++) rb.insert({b.region(i).start, b.region(i).length});
  EXPECT_EQ(ra, rb);
}

// A restore with ASLR off whose layout differs from the recording's may leave regions unmatched,
// but must never hand a mapping the content of another region that happens to have been recorded
// at its address. Two ways the layout shifts: the shim's own settings (its buffers must all lie
// aside, so a different fault-around changes nothing), and the program itself mapping one more
// region first, from a call site of its own (every later address moves; a mapping at a recorded
// address still needs that region's site and ordinal to get its pages). (Were the extra mapping
// from one of the recorded sites, the program itself would renumber that site's mappings, and
// its Nth mapping at the recorded Nth one's address would be, for any identity, the same one.)
TEST(SnapshotRestore, NoAslrShiftedLayoutNeverServesAnotherRegionsContent) {
  TempDir dir;
  const std::string file = dir.file("noaslr.snap");
  RunOptions opt;
  opt.env = {{"UFFDLAZY_FAULT_AROUND", "1"}, {"UFFDLAZY_TRACE", dir.file("t.trace")}};
  ProcessResult rec = record(file, {"--no-aslr"}, {rules(), "fill"}, opt);
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;

  ProcessResult same = restore(file, {"--no-aslr"}, {rules(), "check", "all"});
  EXPECT_EQ(same.exit_code, 0) << "other shim settings must not move the program's mappings\n" << same.out << same.err;
  RestoreLine line = restore_line(same.err, file);
  ASSERT_TRUE(line.found) << same.err;
  EXPECT_EQ(line.matched, 7);

  RunOptions shifted;
  shifted.env = {{"SNAPSHOT_RULES_EXTRA_FIRST", "1"}};
  ProcessResult res = restore(file, {"--no-aslr"}, {rules(), "check", "all"}, shifted);
  EXPECT_EQ(res.signal, 0) << res.err;
  EXPECT_EQ(res.out.find("got data of region"), std::string::npos) << res.out << res.err;
  EXPECT_EQ(res.out.find("got duplicate-"), std::string::npos) << res.out << res.err;
  line = restore_line(res.err, file);
  ASSERT_TRUE(line.found) << res.err;
  // A region whose address moved matches nothing (its pages read zeros); one that kept it (the
  // extra mapping found a hole above it) is the very region recorded there and gets its pages.
  EXPECT_LT(line.matched, 7) << res.out;
}

// The ordinal counts every mapping a site makes, whatever the shim's size threshold: a restore
// with another --min-size must match the same regions, never renumber them.
TEST(SnapshotRestore, AnotherMinSizeNeverRenumbersRegions) {
  TempDir dir;
  const std::string file = dir.file("minsize.snap");
  ProcessResult rec = record(file, {"--min-size", "128K"}, {rules(), "fill"});
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  ProcessResult res = restore(file, {"--min-size", "4K"}, {rules(), "check", "all"});
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out.find("got data of region"), std::string::npos) << res.out << res.err;
}

// ---- a partially restored process, recorded again, is the original ----

TEST(SnapshotRestore, PartiallyRestoredProcessRecordsTheOriginal) {
  Recording& rec = shared();
  ASSERT_EQ(rec.result.exit_code, 0) << rec.result.err;
  TempDir dir;
  const std::string again = dir.file("again.snap");
  RunOptions opt;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_SNAPSHOT", rec.file}, {"UFFDLAZY_RECORD", again}, {"UFFDLAZY_PREFETCH", "none"},
             {"UFFDLAZY_READAHEAD", "1"}};
  ProcessResult res = run_process({rules(), "check", "partial"}, opt);
  ASSERT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, "partial: every third page read\ncheck partial: failures=0\n");
  // Only every third page was served; the rest were still owed when the capture ran.
  long read = 0;
  for (int r = 0; r < rules::kRegions; r++)
    for (int p = 0; p < rules::kPages[r]; p += 3) read += rules::owed(r, uint64_t(p));
  RestoreLine line = restore_line(res.err, rec.file);
  ASSERT_TRUE(line.found) << res.err;
  EXPECT_EQ(line.matched, 7);
  EXPECT_EQ(line.served, read);
  EXPECT_EQ(line.never_touched, owed_pages_total() - read);
  RecordLine written = record_line(res.err, again);
  ASSERT_TRUE(written.found) << res.err;
  EXPECT_EQ(written.regions, 7);
  EXPECT_EQ(written.pages, 496);

  ProcessResult verify = run_process({cli_path(), "verify", again});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  // Page by page: same regions by identity, same content. An absent page may stay absent or come
  // back as a zero page (reading it made it exist); a page that existed must exist again.
  SnapshotReader a, b;
  ASSERT_TRUE(a.open(rec.file.c_str()).ok());
  ASSERT_TRUE(b.open(again.c_str()).ok());
  ASSERT_EQ(a.region_count(), b.region_count());
  const uint64_t ps = a.page_size();
  std::vector<uint8_t> zeros(ps, 0);
  auto identity = [](const SnapshotReader& s, uint64_t i) {
    snap::ModuleView m;
    std::string path = s.region_module(i, &m) ? std::string(m.path) : "?";
    const snap::RegionRecord& r = s.region(i);
    return path + "+" + std::to_string(r.site_offset) + "#" + std::to_string(r.ordinal) + "/" +
           std::to_string(r.alloc_length);
  };
  std::map<std::string, uint64_t> in_b;
  for (uint64_t j = 0; j < b.region_count(); j++) in_b[identity(b, j)] = j;
  ASSERT_EQ(in_b.size(), b.region_count());
  uint64_t compared = 0, content_bad = 0, lost = 0;
  for (uint64_t i = 0; i < a.region_count(); i++) {
    auto it = in_b.find(identity(a, i));
    ASSERT_NE(it, in_b.end()) << "region " << identity(a, i) << " is missing from the second snapshot";
    const uint64_t j = it->second;
    ASSERT_EQ(a.region(i).page_count, b.region(j).page_count);
    for (uint64_t p = 0; p < a.region(i).page_count; p++) {
      snap::PageRef pa = a.page(i, p), pb = b.page(j, p);
      const uint8_t* ca = pa.data ? pa.data : zeros.data();
      const uint8_t* cb = pb.data ? pb.data : zeros.data();
      compared++;
      if (std::memcmp(ca, cb, ps) != 0 && content_bad++ < 5)
        ADD_FAILURE() << identity(a, i) << " page " << p << ": content differs";
      if (pa.kind != PageKind::kAbsent && pb.kind == PageKind::kAbsent && lost++ < 5)
        ADD_FAILURE() << identity(a, i) << " page " << p << ": recorded page lost (absent in the second snapshot)";
    }
  }
  EXPECT_EQ(compared, 496u);
  EXPECT_EQ(content_bad, 0u);
  EXPECT_EQ(lost, 0u);
}

// ---- memory the C library maps for the program reads zeros when fresh ----

// calloc does not clear an mmapped chunk, a freshly grown heap or a new arena: it relies on the
// kernel's zero fill. A restore must therefore never give such memory a recording's bytes (the
// allocator's call sites inside libc would otherwise match by ordinal), while the program's own
// mapping beside it is restored. Both interception modes.
TEST(SnapshotRestore, AllocatorMemoryIsNeverGivenRecordedBytes) {
  for (const char* intercept : {"libc", "symbols"}) {
    SCOPED_TRACE(intercept);
    TempDir dir;
    const std::string file = dir.file("alloc.snap");
    RunOptions opt;
    opt.env = {{"UFFDLAZY_INTERCEPT", intercept}};
    ProcessResult rec = record(file, {}, {target_path("allocator_memory"), "fill"}, opt);
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    ProcessResult res = restore(file, {}, {target_path("allocator_memory"), "check"}, opt);
    EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
    EXPECT_EQ(res.out,
              "calloc mmapped chunk: 0 non-zero bytes\n"
              "calloc from the heap: 0 non-zero bytes\n"
              "calloc in a thread's arena: 0 non-zero bytes\n"
              "own mapping: as recorded\n")
        << res.err;
  }
}

}  // namespace
}  // namespace uffdlazy::test
