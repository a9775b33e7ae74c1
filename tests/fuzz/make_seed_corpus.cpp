// Writes the seed corpus of the fuzzers with the project's own writers:
//   make_fuzz_seeds DIR   ->  DIR/snapshot_reader/seed-*, DIR/report_json/seed-*, DIR/trace_file/seed-*
// The files are small (a few KiB) so the fuzzers start from every structure the formats have.
// regress-* files reproduce bugs the readers had; those written here are the reliability issue's,
// and inputs a fuzzer finds are added by hand under the same prefix.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <vector>

#include "core/latency/fault_stats.h"
#include "core/latency/fault_trace.h"
#include "core/latency/json_report_writer.h"
#include "core/latency/latency_observer.h"
#include "core/snapshot/snapshot_writer.h"
#include "tests/unit/snapshot_rebuild.h"

using uffdlazy::EventKind;
using uffdlazy::FaultRecord;
using uffdlazy::FaultStats;
using uffdlazy::FaultTrace;
using uffdlazy::LatencyObserver;
using uffdlazy::ReportMeta;
using uffdlazy::Resolution;
using uffdlazy::kNoRegion;
using uffdlazy::write_json_report;
using namespace uffdlazy::snap;

namespace {

constexpr uint32_t kPage = 4096;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "make_fuzz_seeds: %s\n", what.c_str());
  std::exit(1);
}

std::vector<uint8_t> read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void write_all(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// `pages` is one letter per page: a absent, z zero, 0-9 a page filled with that digit (a digit
// seen before becomes a duplicate).
struct RegionSpec {
  const char* pages;
  const ModuleIdentity* module;
  uint64_t ordinal;
};

void snapshot(const std::string& path, uint64_t flags, std::initializer_list<RegionSpec> regions) {
  ModuleIdentity exe;
  exe.set_path("/usr/bin/app", 12);
  exe.id_kind = IdKind::kGnuBuildId;
  exe.id_length = 20;
  for (int i = 0; i < 20; i++) exe.id[i] = uint8_t(i * 7 + 1);
  SnapshotWriter w;
  if (!w.open(path.c_str(), WriterOptions{.page_size = kPage, .sync = false, .created_ns = 1700000000000000000ull}).ok() || !w.begin(exe, flags).ok()) die("cannot write " + path);
  std::vector<uint8_t> page(kPage);
  uint64_t start = 0x7f0000000000;
  for (const RegionSpec& r : regions) {
    const uint64_t len = std::strlen(r.pages) * kPage;
    RegionInfo info{start, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    CallSite{r.module, 0x1234, r.ordinal, len}};
    start += len + 0x10000;
    if (!w.add_region_with(info, [&](uint64_t i) -> const void* {
          const char c = r.pages[i];
          if (c == 'a') return nullptr;
          std::memset(page.data(), c == 'z' ? 0 : c, kPage);
          return page.data();
        }).ok()) {
      die("cannot add a region to " + path);
    }
  }
  if (!w.commit().ok()) die("cannot commit " + path);
}

void snapshot_seeds(const std::string& dir) {
  ModuleIdentity lib;
  lib.set_path("/usr/lib/liballoc.so.1", 22);
  lib.id_kind = IdKind::kContentXxh3;
  lib.id_length = 8;
  std::memcpy(lib.id, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
  snapshot(dir + "/seed-no-data", 0, {{"azza", nullptr, 0}});
  snapshot(dir + "/seed-one-block", kFlagNoAslr, {{"1az", &lib, 0}});
  snapshot(dir + "/seed-duplicates", 0, {{"1a1z", &lib, 0}, {"11", &lib, 1}, {"", nullptr, 0}});
  snapshot(dir + "/seed-two-blocks", kFlagPartial, {{"12", nullptr, 3}, {"z21", &lib, 0}});

  // Shapes the reader used to accept (the reliability issue): regions sharing one slice of the
  // page index (of data entries of one block: the old reader then hashed that block once per
  // region and entry), and a block with two data entries.
  const std::vector<uint8_t> good = read_all(dir + "/seed-duplicates");
  const std::vector<uint8_t> one = read_all(dir + "/seed-one-block");
  const PageEntry block = testing::section_records<PageEntry>(one, SectionType::kPageEntries)[0];
  if (entry_kind(block) != PageKind::kData) die("seed-one-block does not start with its block");
  write_all(dir + "/regress-regions-share-index", testing::aliasing_snapshot(one, 16, 4, kPage, block));
  auto regions = testing::section_records<RegionRecord>(good, SectionType::kRegions);
  auto runs = testing::section_records<RunRecord>(good, SectionType::kPageRuns);
  auto entries = testing::section_records<PageEntry>(good, SectionType::kPageEntries);
  for (PageEntry& e : entries) {
    if (entry_kind(e) == PageKind::kDuplicate) e.offset_kind = entry_offset(e) | uint64_t(PageKind::kData);
  }
  for (RegionRecord& r : regions) testing::recount(r, runs, entries);
  write_all(dir + "/regress-block-two-data-entries", testing::rebuild_snapshot(good, regions, runs, entries));

  // Sparse regions: a 4 GiB region with a page at each end, and an incremental image whose pages
  // lie in its parent (written by hand: the writer makes one only with an ancestor it was given).
  std::vector<uint8_t> page(kPage, 0x5a);
  ModuleIdentity exe;
  exe.set_path("/usr/bin/app", 12);
  {
    SnapshotWriter w;
    const std::string path = dir + "/seed-sparse";
    if (!w.open(path.c_str(), WriterOptions{.page_size = kPage, .sync = false, .created_ns = 1700000000000000000ull}).ok() ||
        !w.begin(exe, 0).ok()) {
      die("cannot write " + path);
    }
    const uint64_t pages = (4ull << 30) / kPage;
    struct Ends final : PageProvider {
      uint64_t pages;
      const void* data;
      const void* page(uint64_t i) override { return i == 0 || i == pages - 1 ? data : nullptr; }
      uint64_t next(uint64_t from, uint64_t end) override {
        if (from == 0) return 0;
        return from <= pages - 1 && pages - 1 < end ? pages - 1 : end;
      }
    } ends;
    ends.pages = pages;
    ends.data = page.data();
    RegionInfo info{0x7f0000000000, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, CallSite{}};
    if (!w.add_region(info, ends).ok() || !w.commit().ok()) die("cannot write " + path);
  }
  {
    const std::vector<uint8_t> parent = read_all(dir + "/seed-two-blocks");
    FileHeader ph;
    std::memcpy(&ph, parent.data(), sizeof ph);
    const SectionEntry data = testing::find_section(parent, SectionType::kData);
    auto pruns = testing::section_records<RunRecord>(one, SectionType::kPageRuns);
    auto pentries = testing::section_records<PageEntry>(one, SectionType::kPageEntries);
    auto pregions = testing::section_records<RegionRecord>(one, SectionType::kRegions);
    const SectionEntry strings = testing::find_section(one, SectionType::kStrings);
    const char name[] = "/tmp/parent.img";
    std::vector<char> extra(name, name + sizeof name);
    AncestorRecord a{};
    a.header_checksum = ph.header_checksum;
    a.file_size = ph.file_size;
    a.created_ns = ph.created_ns;
    a.data_offset = data.offset;
    a.data_length = data.length;
    a.path_offset = uint32_t(strings.length);
    a.path_length = uint32_t(sizeof name - 1);
    // seed-one-block's first page (its block) now lies in the parent's first block.
    pentries[0] = make_entry(PageKind::kParent, data.offset, pentries[0].checksum, 1);
    for (RegionRecord& r : pregions) testing::recount(r, pruns, pentries);
    // Its own block has no data entry any more: its data area goes.
    write_all(dir + "/seed-parent-page", testing::rebuild_snapshot(one, pregions, pruns, pentries, {a}, extra, true));
  }
}

void latency_seeds(const std::string& report_dir, const std::string& trace_dir) {
  auto stats = std::make_unique<FaultStats>();
  FaultTrace trace;
  if (trace.init(8) != 0) die("cannot map a trace");
  const uint64_t t0 = 1'000'000'000;
  stats->start(t0);
  stats->region_registered(1, 0x7f0000000000ull, 1 << 20, "heap");
  stats->region_registered(2, 0x7f0000200000ull, 1 << 16, "arena \"2\"\n");
  const Resolution kinds[] = {Resolution::kSnapshotPage, Resolution::kZero,     Resolution::kDuplicate,
                              Resolution::kAlreadyPresent, Resolution::kUnmapped, Resolution::kError};
  for (uint64_t i = 0; i < 12; i++) {
    const Resolution r = kinds[i % 6];
    const FaultRecord rec = LatencyObserver::make_record(
        t0 + i * 70'000, t0 + i * 70'000 + 900 + i * i * 3000, uint32_t(100 + i % 3), 0x7f0000000000ull + i * 4096,
        i % 2, i % 5 == 4 ? kNoRegion : uint32_t(1 + i % 2), r, r == Resolution::kAlreadyPresent ? 0 : 1 + i % 4);
    stats->record_fault(rec);
    trace.append(rec);  // the last 4 are dropped: the trace holds 8
  }
  stats->record_event(EventKind::kRemove, 0, 4000);
  stats->record_event(EventKind::kRemap, 0, 12000);
  ReportMeta m;
  m.pid = 4321;
  m.program = "/usr/bin/app";
  m.end_ns = t0 + 20'000'000;
  m.measurement_overhead_ns = 25;
  if (write_json_report((report_dir + "/seed-without-trace.json").c_str(), *stats, m) != 0) die("cannot write a report");
  m.trace = &trace;
  m.trace_path = "/tmp/trace \u00e9.bin";
  if (write_json_report((report_dir + "/seed-with-trace.json").c_str(), *stats, m) != 0) die("cannot write a report");
  if (trace.write_file((trace_dir + "/seed-dropped").c_str(), 4321, t0, 4096) != 0) die("cannot write a trace");
  FaultTrace empty;
  if (empty.init(1) != 0 || empty.write_file((trace_dir + "/seed-empty").c_str(), 1, 0, 4096) != 0) {
    die("cannot write a trace");
  }
  auto none = std::make_unique<FaultStats>();
  none->start(t0);
  ReportMeta m0;
  m0.pid = 1;
  m0.program = "x";
  m0.end_ns = t0 + 1;
  m0.measurement_overhead_ns = 0;
  if (write_json_report((report_dir + "/seed-no-faults.json").c_str(), *none, m0) != 0) die("cannot write a report");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds CORPUS_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  for (const char* sub : {"", "/snapshot_reader", "/report_json", "/trace_file"}) mkdir((dir + sub).c_str(), 0755);
  snapshot_seeds(dir + "/snapshot_reader");
  latency_seeds(dir + "/report_json", dir + "/trace_file");
  return 0;
}
