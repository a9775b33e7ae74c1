// Round trips through SnapshotWriter and SnapshotReader: every byte of every page comes back,
// page kinds are right, duplicates are stored once.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

namespace {

// A fresh directory, removed with everything in it when the test ends.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/uffdlazy-snap-XXXXXX";
    const char* d = mkdtemp(tmpl);
    path = d ? d : "/tmp";
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::string make_temp_dir() {
  static std::vector<std::unique_ptr<TempDir>> dirs;  // live until the test binary exits
  dirs.push_back(std::make_unique<TempDir>());
  return dirs.back()->path;
}

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// A region's expected content: per page either absent or page_size bytes.
struct Expected {
  RegionInfo info;
  std::vector<std::vector<uint8_t>> pages;  // empty vector = absent
};

ModuleIdentity fake_module(const char* path, uint8_t seed) {
  ModuleIdentity m;
  m.set_path(path, strlen(path));
  m.id_kind = IdKind::kGnuBuildId;
  m.id_length = 20;
  for (int i = 0; i < 20; i++) m.id[i] = uint8_t(seed + i);
  return m;
}

ModuleIdentity g_libfoo = fake_module("/usr/lib/libfoo.so.1", 7);
ModuleIdentity g_libbar = fake_module("/opt/bar/libbar.so", 90);

// Four regions covering every kind: random pages, zero pages, absent pages, duplicates within a
// region and across regions, a length that is not a page multiple, an all-absent region and an
// empty one.
std::vector<Expected> make_regions(uint32_t ps, std::mt19937_64& rng) {
  auto random_page = [&] {
    std::vector<uint8_t> p(ps);
    for (auto& b : p) b = uint8_t(rng());
    return p;
  };
  std::vector<Expected> regions(5);
  auto& r0 = regions[0];
  r0.info = RegionInfo{0x7f0000000000, 64ull * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       CallSite{&g_libfoo, 0x1234, 0, 64ull * ps}};
  for (int i = 0; i < 64; i++) r0.pages.push_back(random_page());
  r0.pages[5] = std::vector<uint8_t>(ps, 0);
  r0.pages[6] = std::vector<uint8_t>(ps, 0);
  r0.pages[7].clear();  // absent
  r0.pages[10] = r0.pages[3];
  r0.pages[11] = r0.pages[3];
  r0.pages[63] = std::vector<uint8_t>(ps, 0);
  r0.pages[63][ps - 1] = 1;  // nonzero only in the last byte: must not be taken for zero

  auto& r1 = regions[1];
  r1.info = RegionInfo{0x7f0000100000, 33ull * ps - 100, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
                       CallSite{&g_libbar, 0x99, 2, 40ull * ps}};
  for (int i = 0; i < 33; i++) r1.pages.push_back(random_page());
  r1.pages[0] = regions[0].pages[0];  // across regions
  r1.pages[1] = regions[0].pages[3];
  r1.pages[2].clear();
  r1.pages[32] = std::vector<uint8_t>(ps, 0);

  auto& r2 = regions[2];
  r2.info = RegionInfo{0x600000, 8ull * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       CallSite{&g_libfoo, 0x1234, 1, 8ull * ps}};
  r2.pages.resize(8);  // all absent

  auto& r3 = regions[3];
  r3.info = RegionInfo{0x700000, 0, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, CallSite{}};

  auto& r4 = regions[4];
  r4.info = RegionInfo{0x800000, 4ull * ps, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED | MAP_ANONYMOUS,
                       CallSite{nullptr, 0, 0, 0}};
  for (int i = 0; i < 4; i++) r4.pages.push_back(regions[1].pages[5]);  // all the same page
  return regions;
}

WriteStatus write_snapshot(const std::string& path, const std::vector<Expected>& regions,
                           const WriterOptions& opt, WriterStats* stats = nullptr) {
  ModuleIdentity exe = fake_module("/usr/bin/target", 200);
  SnapshotWriter w;
  WriteStatus s = w.open(path.c_str(), opt);
  if (!s.ok()) return s;
  s = w.begin(exe, kFlagNoAslr);
  if (!s.ok()) return s;
  for (const auto& r : regions) {
    s = w.add_region_with(r.info, [&](uint64_t i) -> const void* {
      return r.pages[i].empty() ? nullptr : r.pages[i].data();
    });
    if (!s.ok()) return s;
  }
  s = w.commit();
  if (stats) *stats = w.stats();
  return s;
}

bool all_zero(const std::vector<uint8_t>& p) {
  for (uint8_t b : p)
    if (b) return false;
  return true;
}

// Checks what the reader returns against what was written.
void expect_round_trip(const SnapshotReader& r, const std::vector<Expected>& regions) {
  const uint32_t ps = r.page_size();
  ASSERT_EQ(r.region_count(), regions.size());
  for (size_t ri = 0; ri < regions.size(); ri++) {
    const Expected& x = regions[ri];
    const RegionRecord& rec = r.region(ri);
    EXPECT_EQ(rec.start, x.info.start);
    EXPECT_EQ(rec.length, x.info.length);
    EXPECT_EQ(rec.prot, x.info.prot);
    EXPECT_EQ(rec.map_flags, x.info.map_flags);
    EXPECT_EQ(rec.site_offset, x.info.site.offset);
    EXPECT_EQ(rec.ordinal, x.info.site.ordinal);
    EXPECT_EQ(rec.alloc_length, x.info.site.alloc_length);
    ASSERT_EQ(rec.page_count, x.pages.size());
    ModuleView m;
    if (x.info.site.module) {
      ASSERT_TRUE(r.region_module(ri, &m));
      EXPECT_EQ(std::string(m.path, m.path_length), std::string(x.info.site.module->path));
      EXPECT_EQ(m.id_kind, x.info.site.module->id_kind);
      ASSERT_EQ(m.id_length, x.info.site.module->id_length);
      EXPECT_EQ(0, memcmp(m.id, x.info.site.module->id, m.id_length));
    } else {
      EXPECT_FALSE(r.region_module(ri, &m));
    }
    for (size_t pi = 0; pi < x.pages.size(); pi++) {
      SCOPED_TRACE("region " + std::to_string(ri) + " page " + std::to_string(pi));
      const PageRef p = r.page(ri, pi);
      const auto& want = x.pages[pi];
      if (want.empty()) {
        EXPECT_EQ(p.kind, PageKind::kAbsent);
        EXPECT_EQ(p.data, nullptr);
      } else if (all_zero(want)) {
        EXPECT_EQ(p.kind, PageKind::kZero);
      } else {
        ASSERT_TRUE(p.kind == PageKind::kData || p.kind == PageKind::kDuplicate);
        ASSERT_NE(p.data, nullptr);
        EXPECT_EQ(0, memcmp(p.data, want.data(), ps));
        EXPECT_EQ((p.data - r.base()) % ps, 0);
        EXPECT_TRUE(r.verify_page(ri, pi));
      }
    }
  }
}

size_t unique_nonzero_pages(const std::vector<Expected>& regions) {
  std::vector<std::vector<uint8_t>> seen;
  for (const auto& r : regions)
    for (const auto& p : r.pages) {
      if (p.empty() || all_zero(p)) continue;
      bool dup = false;
      for (const auto& s : seen) dup = dup || s == p;
      if (!dup) seen.push_back(p);
    }
  return seen.size();
}

}  // namespace

TEST(SnapshotFormat, RoundTripEveryPageKind) {
  const uint32_t ps = uint32_t(sysconf(_SC_PAGESIZE));
  std::mt19937_64 rng(42);
  const auto regions = make_regions(ps, rng);
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/a.snap";
  WriterStats st;
  ASSERT_TRUE(write_snapshot(path, regions, WriterOptions{}, &st).ok());
  EXPECT_FALSE(exists(path + ".tmp." + std::to_string(getpid())));

  SnapshotReader r;
  ReadStatus s = r.open(path.c_str());
  ASSERT_TRUE(s.ok()) << read_error_name(s.error);
  EXPECT_EQ(r.header().version_major, kVersionMajor);
  EXPECT_EQ(r.header().page_size, ps);
  EXPECT_EQ(r.header().flags, kFlagNoAslr);
  EXPECT_GT(r.header().created_ns, 1600000000ull * 1000000000ull);
  EXPECT_STREQ(r.exe_path(), "/usr/bin/target");
  EXPECT_EQ(r.executable().id_kind, IdKind::kGnuBuildId);
  EXPECT_EQ(r.module_count(), 2u);  // libfoo used twice, stored once
  expect_round_trip(r, regions);

  // Duplicates are stored once: the data area holds exactly the distinct non-zero pages.
  const size_t unique = unique_nonzero_pages(regions);
  EXPECT_EQ(st.data_pages, unique);
  EXPECT_EQ(r.data_length(), unique * ps);
  EXPECT_EQ(st.duplicate_pages, 2u + 2u + 4u);  // r0: 10,11; r1: 0,1; r4: all (copies of r1's page 5)
  EXPECT_LE(r.file_size(), (unique + 1) * ps + 16 * 1024);

  const VerifyReport rep = r.verify_all();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.regions, regions.size());
  EXPECT_EQ(rep.pages, 64u + 33u + 8u + 0u + 4u);
  EXPECT_EQ(rep.blocks_checked, unique);

  ModuleIdentity exe;
  r.executable_identity(&exe);
  EXPECT_TRUE(r.check_identity(exe).ok());
}

TEST(SnapshotFormat, DedupTableBoundedOrOffStaysCorrect) {
  const uint32_t ps = uint32_t(sysconf(_SC_PAGESIZE));
  std::mt19937_64 rng(7);
  const auto regions = make_regions(ps, rng);
  const std::string dir = make_temp_dir();
  size_t total_nonzero = 0;
  for (const auto& r : regions)
    for (const auto& p : r.pages) total_nonzero += !p.empty() && !all_zero(p);

  for (uint32_t slots : {0u, 4u}) {
    SCOPED_TRACE("dedup_slots " + std::to_string(slots));
    const std::string path = dir + "/d" + std::to_string(slots) + ".snap";
    WriterOptions opt;
    opt.dedup_slots = slots;
    opt.buffer_pages = 3;  // many flushes, and dedup hits both in the buffer and on disk
    WriterStats st;
    ASSERT_TRUE(write_snapshot(path, regions, opt, &st).ok());
    SnapshotReader r;
    ASSERT_TRUE(r.open(path.c_str()).ok());
    expect_round_trip(r, regions);
    EXPECT_TRUE(r.verify_all().ok());
    EXPECT_EQ(st.data_pages + st.duplicate_pages, total_nonzero);
    if (slots == 0) {
      EXPECT_EQ(st.duplicate_pages, 0u);
    }
    if (slots == 4) {
      EXPECT_GT(st.dedup_dropped, 0u);
    }
  }
}

TEST(SnapshotFormat, ForeignPageSizeReadableOnlyOnRequest) {
  // A page size other than this machine's, whatever this machine's is.
  const uint32_t ps = sysconf(_SC_PAGESIZE) == 16384 ? 65536 : 16384;
  std::mt19937_64 rng(3);
  const auto regions = make_regions(ps, rng);
  const std::string path = make_temp_dir() + "/p16k.snap";
  WriterOptions opt;
  opt.page_size = ps;
  ASSERT_TRUE(write_snapshot(path, regions, opt).ok());
  SnapshotReader r;
  ReadStatus s = r.open(path.c_str());
  EXPECT_EQ(s.error, ReadError::kPageSizeMismatch);
  EXPECT_EQ(s.a, ps);
  ASSERT_TRUE(r.open(path.c_str(), /*native_page_size=*/false).ok());
  expect_round_trip(r, regions);
}

TEST(SnapshotFormat, LargeRegionStreamsThroughSmallBuffer) {
  // 8 MiB of distinct pages through a 2-page buffer and a 16-slot table: memory stays bounded
  // while the file holds every page.
  const uint32_t ps = uint32_t(sysconf(_SC_PAGESIZE));
  const uint64_t pages = 8ull * 1024 * 1024 / ps;
  std::vector<uint8_t> page(ps);
  const std::string path = make_temp_dir() + "/big.snap";
  ModuleIdentity exe = fake_module("/bin/big", 1);
  SnapshotWriter w;
  WriterOptions opt;
  opt.buffer_pages = 2;
  opt.dedup_slots = 16;
  ASSERT_TRUE(w.open(path.c_str(), opt).ok());
  ASSERT_TRUE(w.begin(exe, 0).ok());
  RegionInfo info{0x10000000, pages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, {}};
  ASSERT_TRUE(w.add_region_with(info, [&](uint64_t i) -> const void* {
                 memset(page.data(), int(i % 251) + 1, ps);
                 memcpy(page.data(), &i, sizeof i);
                 return page.data();
               }).ok());
  ASSERT_TRUE(w.commit().ok());
  SnapshotReader r;
  ASSERT_TRUE(r.open(path.c_str()).ok());
  ASSERT_EQ(r.region(0).data_pages, pages);
  for (uint64_t i = 0; i < pages; i++) {
    const PageRef p = r.page(0, i);
    uint64_t tag;
    memcpy(&tag, p.data, sizeof tag);
    ASSERT_EQ(tag, i);
    ASSERT_EQ(p.data[ps - 1], uint8_t(i % 251 + 1));
  }
  EXPECT_TRUE(r.verify_all().ok());
}
