// Every way a snapshot file can be bad is reported as its own error, with a clear message.
#include <gtest/gtest.h>

#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"
#include "tests/unit/snapshot_rebuild.h"

using namespace uffdlazy::snap;
using uffdlazy::snap::testing::rebuild_snapshot;
using uffdlazy::snap::testing::recount;
using uffdlazy::snap::testing::section_records;

namespace {

class SnapshotReaderErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uffdlazy-snaperr-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    good_ = dir_ + "/good.snap";
    ps_ = uint32_t(sysconf(_SC_PAGESIZE));
    write_good();
    bytes_ = read_all(good_);
    memcpy(&header_, bytes_.data(), sizeof header_);
    SnapshotReader r;
    ASSERT_TRUE(r.open(good_.c_str()).ok());
    data_offset_ = r.data_offset();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Two regions: 6 distinct pages, a zero page, an absent page and 3 copies of one page.
  void write_good() {
    ModuleIdentity exe;
    exe.set_path("/usr/bin/app", 12);
    exe.id_kind = IdKind::kGnuBuildId;
    exe.id_length = 4;
    memcpy(exe.id, "\x01\x02\x03\x04", 4);
    SnapshotWriter w;
    ASSERT_TRUE(w.open(good_.c_str()).ok());
    ASSERT_TRUE(w.begin(exe, 0).ok());
    std::vector<uint8_t> page(ps_);
    for (int region = 0; region < 2; region++) {
      RegionInfo info{0x1000000ull * (region + 1), 8ull * ps_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      CallSite{&exe, 0x40, uint64_t(region), 8ull * ps_}};
      ASSERT_TRUE(w.add_region_with(info, [&](uint64_t i) -> const void* {
                     if (region == 0 && i == 6) return nullptr;
                     if (region == 0 && i == 7) {
                       memset(page.data(), 0, ps_);
                       return page.data();
                     }
                     // Region 1 pages 5..7 repeat region 0 page 1 (duplicates).
                     const uint64_t tag = (region == 1 && i >= 5) ? 1 : region * 100 + i;
                     memset(page.data(), int(tag * 3 + 1), ps_);
                     memcpy(page.data(), &tag, sizeof tag);
                     return page.data();
                   }).ok());
    }
    ASSERT_TRUE(w.commit().ok());
  }

  static std::vector<uint8_t> read_all(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }
  std::string write_variant(const std::string& name, const std::vector<uint8_t>& b) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    return p;
  }
  ReadStatus open_variant(const std::string& name, const std::vector<uint8_t>& b) {
    SnapshotReader r;
    return r.open(write_variant(name, b).c_str());
  }
  SectionEntry section(SectionType t) const {
    for (uint32_t i = 0; i < header_.section_count; i++) {
      SectionEntry e;
      memcpy(&e, bytes_.data() + header_.section_table_offset + i * sizeof e, sizeof e);
      if (e.type == uint32_t(t)) return e;
    }
    return SectionEntry{};
  }
  // Recomputes the header checksum after an edit, so only the edited field is wrong.
  static void reseal_header(std::vector<uint8_t>& b) {
    FileHeader h;
    memcpy(&h, b.data(), sizeof h);
    h.header_checksum = checksum_with_zeroed_u64(b.data(), h.header_size, offsetof(FileHeader, header_checksum));
    memcpy(b.data(), &h, sizeof h);
  }
  static std::string message(const ReadStatus& s) {
    uffdlazy::LineWriter w;
    describe(s, w);
    return std::string(w.data(), w.size());
  }

  std::string dir_, good_;
  uint32_t ps_ = 0;
  std::vector<uint8_t> bytes_;
  FileHeader header_{};
  uint64_t data_offset_ = 0;
};

TEST_F(SnapshotReaderErrors, MissingFile) {
  SnapshotReader r;
  ReadStatus s = r.open((dir_ + "/nope.snap").c_str());
  EXPECT_EQ(s.error, ReadError::kOpenFailed);
  EXPECT_EQ(s.err, ENOENT);
  EXPECT_EQ(message(s), "cannot open: No such file or directory (ENOENT)");
  EXPECT_FALSE(r.is_open());
}

TEST_F(SnapshotReaderErrors, DirectoryIsNotASnapshot) {
  SnapshotReader r;
  EXPECT_EQ(r.open(dir_.c_str()).error, ReadError::kNotRegularFile);
}

TEST_F(SnapshotReaderErrors, EmptyFile) {
  ReadStatus s = open_variant("empty", {});
  EXPECT_EQ(s.error, ReadError::kEmpty);
  EXPECT_NE(message(s).find("empty"), std::string::npos);
}

TEST_F(SnapshotReaderErrors, TruncatedAtEveryInterestingPoint) {
  const uint64_t cuts[] = {4,
                           20,
                           100,
                           sizeof(FileHeader) + 3,  // inside the executable path
                           data_offset_,
                           data_offset_ + ps_ + 17,
                           header_.section_table_offset - 1,
                           header_.section_table_offset + 5,
                           bytes_.size() - 1};
  for (uint64_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    std::vector<uint8_t> b(bytes_.begin(), bytes_.begin() + long(cut));
    ReadStatus s = open_variant("cut", b);
    EXPECT_EQ(s.error, ReadError::kTruncated) << message(s);
    EXPECT_EQ(s.a, cut);
    EXPECT_NE(message(s).find("truncated"), std::string::npos);
  }
}

TEST_F(SnapshotReaderErrors, WrongMagic) {
  auto b = bytes_;
  b[3] = 'X';
  ReadStatus s = open_variant("magic", b);
  EXPECT_EQ(s.error, ReadError::kBadMagic);
  EXPECT_EQ(message(s), "not a uffdlazy snapshot (bad magic)");
  EXPECT_EQ(open_variant("text", std::vector<uint8_t>{'h', 'i', '\n'}).error, ReadError::kBadMagic);
}

TEST_F(SnapshotReaderErrors, NewerMajorVersionRefused) {
  auto b = bytes_;
  b[offsetof(FileHeader, version_major)] = 3;
  b[offsetof(FileHeader, version_minor)] = 0;
  reseal_header(b);
  ReadStatus s = open_variant("v3", b);
  EXPECT_EQ(s.error, ReadError::kUnsupportedVersion);
  EXPECT_EQ(s.a, 3u);
  EXPECT_EQ(message(s), "unsupported snapshot format version 3.0 (this build reads 1.x and 2.x)");
  b[offsetof(FileHeader, version_major)] = 0;  // even unsealed, the version is named first
  EXPECT_EQ(open_variant("v0", b).error, ReadError::kUnsupportedVersion);
}

TEST_F(SnapshotReaderErrors, FormatTwoFileLabelledOneIsNotReadAsOne) {
  // 1.x files are read (SnapshotV1Read.*), by 1.x's rules: a 2.0 file relabelled 1.1 (160-byte
  // region records, required sections 1.x never had) is refused as malformed, never read as a
  // per-page index.
  auto b = bytes_;
  b[offsetof(FileHeader, version_major)] = 1;
  b[offsetof(FileHeader, version_minor)] = 1;
  reseal_header(b);
  ReadStatus s = open_variant("v1", b);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error, ReadError::kUnsupportedVersion);
}

TEST_F(SnapshotReaderErrors, NewerMinorVersionAccepted) {
  auto b = bytes_;
  b[offsetof(FileHeader, version_minor)] = 9;
  reseal_header(b);
  SnapshotReader r;
  ASSERT_TRUE(r.open(write_variant("v1.9", b).c_str()).ok());
  EXPECT_EQ(r.header().version_minor, 9);
  EXPECT_TRUE(r.verify_all().ok());
}

TEST_F(SnapshotReaderErrors, UnknownSectionsSkippedUnlessRequired) {
  // A later minor version appends a section: rebuild the table with one more entry at the end.
  for (uint32_t flags : {0u, kSectionRequired}) {
    SCOPED_TRACE("flags " + std::to_string(flags));
    auto b = bytes_;
    const uint64_t table_len = uint64_t(header_.section_count) * sizeof(SectionEntry);
    std::vector<uint8_t> table(b.begin() + long(header_.section_table_offset),
                               b.begin() + long(header_.section_table_offset + table_len));
    b.resize(header_.section_table_offset);
    const char payload[] = "future data";
    const uint64_t payload_at = b.size();
    b.insert(b.end(), payload, payload + sizeof payload);
    b.resize(uffdlazy::align_up(b.size(), 8));
    SectionEntry extra{77, flags, payload_at, sizeof payload, checksum(payload, sizeof payload)};
    const uint8_t* e = reinterpret_cast<const uint8_t*>(&extra);
    table.insert(table.end(), e, e + sizeof extra);
    FileHeader h;
    memcpy(&h, b.data(), sizeof h);
    h.section_table_offset = b.size();
    h.section_count++;
    h.section_table_checksum = checksum(table.data(), table.size());
    b.insert(b.end(), table.begin(), table.end());
    h.file_size = b.size();
    memcpy(b.data(), &h, sizeof h);
    reseal_header(b);
    SnapshotReader r;
    ReadStatus s = r.open(write_variant("future", b).c_str());
    if (flags) {
      EXPECT_EQ(s.error, ReadError::kUnknownRequiredSection);
      EXPECT_EQ(s.a, 77u);
    } else {
      ASSERT_TRUE(s.ok()) << message(s);
      EXPECT_TRUE(r.verify_all().ok());
    }
  }
}

TEST_F(SnapshotReaderErrors, FlippedHeaderByte) {
  for (size_t at : {size_t(28) /* page size */, offsetof(FileHeader, created_ns), offsetof(FileHeader, exe_id),
                    sizeof(FileHeader) + 2 /* executable path */}) {
    SCOPED_TRACE("byte " + std::to_string(at));
    auto b = bytes_;
    b[at] ^= 0x10;
    ReadStatus s = open_variant("hdr", b);
    EXPECT_EQ(s.error, ReadError::kHeaderChecksum);
    EXPECT_EQ(message(s), "header checksum mismatch (the file is damaged)");
  }
}

TEST_F(SnapshotReaderErrors, FlippedIndexBytes) {
  const SectionEntry regions = section(SectionType::kRegions);
  const SectionEntry index = section(SectionType::kPageEntries);
  const SectionEntry runs = section(SectionType::kPageRuns);
  const SectionEntry modules = section(SectionType::kModules);
  ASSERT_GT(index.length, 0u);
  {
    auto b = bytes_;
    b[regions.offset + sizeof(RegionRecord) + 8] ^= 1;  // region 1's length
    ReadStatus s = open_variant("reg", b);
    EXPECT_EQ(s.error, ReadError::kIndexChecksum);
    EXPECT_STREQ(s.what, "region table");
  }
  {
    auto b = bytes_;
    b[modules.offset + 20] ^= 1;
    EXPECT_STREQ(open_variant("mod", b).what, "module table");
  }
  {
    auto b = bytes_;
    b[index.offset + 7 * sizeof(PageEntry) + 3 * sizeof(PageEntry) + 9] ^= 1;  // region 1, page 3
    ReadStatus s = open_variant("idx", b);
    EXPECT_EQ(s.error, ReadError::kIndexChecksum);
    EXPECT_EQ(message(s), "index checksum mismatch in the page entries (the file is damaged)");
  }
  {
    auto b = bytes_;
    b[runs.offset + sizeof(RunRecord) + 1] ^= 1;  // region 0's second run
    ReadStatus s = open_variant("runs", b);
    EXPECT_EQ(s.error, ReadError::kIndexChecksum);
    EXPECT_EQ(message(s), "index checksum mismatch in the page runs (the file is damaged)");
  }
  {
    auto b = bytes_;
    b[header_.section_table_offset + 40] ^= 1;
    EXPECT_STREQ(open_variant("tab", b).what, "section table");
  }
}

TEST_F(SnapshotReaderErrors, FlippedDataByteFoundByVerify) {
  // Region 0 page 1's block is shared by region 1 pages 5..7: all four pages go bad.
  SnapshotReader good;
  ASSERT_TRUE(good.open(good_.c_str()).ok());
  const PageRef p = good.page(0, 1);
  ASSERT_EQ(p.kind, PageKind::kData);
  ASSERT_EQ(good.page(1, 6).kind, PageKind::kDuplicate);
  ASSERT_EQ(good.page(1, 6).offset, p.offset);
  auto b = bytes_;
  b[p.offset + 1234] ^= 0x80;
  SnapshotReader r;
  ASSERT_TRUE(r.open(write_variant("data", b).c_str()).ok());  // data is checked on demand
  EXPECT_FALSE(r.verify_page(0, 1));
  EXPECT_TRUE(r.verify_page(0, 2));
  const VerifyReport rep = r.verify_all();
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(rep.first_bad_region, 0u);
  EXPECT_EQ(rep.first_bad_page, 1u);
  EXPECT_EQ(rep.bad_pages, 4u);
}

TEST_F(SnapshotReaderErrors, PageSizeMismatchNamed) {
  ReadStatus s{ReadError::kPageSizeMismatch, 0, 16384, 4096};
  EXPECT_EQ(message(s), "page size mismatch: the snapshot has 16384-byte pages, this machine uses 4096");
}

TEST_F(SnapshotReaderErrors, ForeignExecutable) {
  SnapshotReader r;
  ASSERT_TRUE(r.open(good_.c_str()).ok());
  ModuleIdentity same;
  r.executable_identity(&same);
  EXPECT_TRUE(r.check_identity(same).ok());
  EXPECT_TRUE(same_module(same, same));

  ModuleIdentity moved = same;  // same build-id at another path: still the same program
  moved.set_path("/elsewhere/app", 14);
  EXPECT_TRUE(r.check_identity(moved).ok());

  ModuleIdentity rebuilt = same;  // same path, another build
  rebuilt.id[0] ^= 1;
  ReadStatus s = r.check_identity(rebuilt);
  EXPECT_EQ(s.error, ReadError::kForeign);
  EXPECT_EQ(message(s), "foreign snapshot: it was recorded from a different executable (/usr/bin/app)");

  ModuleIdentity no_id;  // no build-id on one side: paths decide
  no_id.set_path("/usr/bin/app", 12);
  EXPECT_TRUE(r.check_identity(no_id).ok());
  no_id.set_path("/usr/bin/other", 14);
  EXPECT_EQ(r.check_identity(no_id).error, ReadError::kForeign);
}

// The page index's shape. Each region owns the runs and entries that follow the previous region's,
// its runs are in page order and inside it, and each data block has exactly one data entry, so
// that opening a file and walking all its pages cost time linear in its size. The good file:
// region 0 = runs {0..5} and {7} (page 6 absent, page 7 zero) over entries 0..6, region 1 = run
// {0..7} over entries 7..14; region 0 page 1 (entry 1) is the data entry of the block region 1
// pages 5..7 (entries 12..14) duplicate.
class SnapshotIndexShape : public SnapshotReaderErrors {
 protected:
  void SetUp() override {
    SnapshotReaderErrors::SetUp();
    regions = section_records<RegionRecord>(bytes_, SectionType::kRegions);
    runs = section_records<RunRecord>(bytes_, SectionType::kPageRuns);
    entries = section_records<PageEntry>(bytes_, SectionType::kPageEntries);
    ASSERT_EQ(regions.size(), 2u);
    ASSERT_EQ(runs.size(), 3u);
    ASSERT_EQ(entries.size(), 15u);
  }
  ReadStatus open_rebuilt(const std::string& name) {
    for (RegionRecord& r : regions) recount(r, runs, entries);
    return open_variant(name, rebuild_snapshot(bytes_, regions, runs, entries));
  }
  std::vector<RegionRecord> regions;
  std::vector<RunRecord> runs;
  std::vector<PageEntry> entries;
};

TEST_F(SnapshotIndexShape, WriterMadeTheExpectedRuns) {
  EXPECT_EQ(runs[0].first_page, 0u);
  EXPECT_EQ(runs[0].pages, 6u);
  EXPECT_EQ(runs[1].first_page, 7u);
  EXPECT_EQ(runs[1].entry, 6u);
  EXPECT_EQ(runs[2].entry, 7u);
  EXPECT_EQ(regions[0].absent_pages, 1u);
  EXPECT_EQ(entry_kind(entries[6]), PageKind::kZero);
  SnapshotReader r;
  ASSERT_TRUE(r.open(good_.c_str()).ok());
  EXPECT_EQ(r.page(0, 6).kind, PageKind::kAbsent);
  EXPECT_EQ(r.page(0, 7).kind, PageKind::kZero);
  EXPECT_EQ(r.find(0, 6), -1);
  EXPECT_EQ(r.find(1, 3), 10);
  EXPECT_EQ(r.next_stored(0, 6), 7u);
  EXPECT_EQ(r.next_stored(0, 8), 8u);
}

TEST_F(SnapshotIndexShape, RegionsSharingOneIndexSliceRefused) {
  // The file of the reliability issue: 10000 regions that each claim the same 65536 entries
  // (1 MB describing 655 million pages); a reader that walked every one of them took minutes.
  const std::vector<uint8_t> b = uffdlazy::snap::testing::aliasing_snapshot(bytes_, 10000, 65536, ps_);
  ASSERT_LT(b.size(), 2700000u);
  ReadStatus s = open_variant("alias", b);
  EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
  EXPECT_EQ(message(s), "malformed snapshot: a region's runs or entries do not follow the previous region's");
  EXPECT_EQ(open_variant("alias2", uffdlazy::snap::testing::aliasing_snapshot(bytes_, 2, 4, ps_)).error,
            ReadError::kMalformed);
  for (uint64_t first : {0ull, 1ull, 3ull}) {
    SCOPED_TRACE("region 1 starts at run " + std::to_string(first));
    regions[1].run_first = first;
    ReadStatus st = open_rebuilt("moved");
    EXPECT_EQ(st.error, ReadError::kMalformed) << message(st);
  }
}

TEST_F(SnapshotIndexShape, EntriesNoRegionOwnsRefused) {
  entries.push_back(make_entry(PageKind::kZero, 0, 0));
  ReadStatus s = open_rebuilt("extra");
  EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
  EXPECT_EQ(message(s), "malformed snapshot: the page index has entries no region owns");
}

TEST_F(SnapshotIndexShape, RunsOutOfOrderOverlappingOrOutsideRefused) {
  {
    auto saved = runs;
    runs[1].first_page = 5;  // overlaps the first run's last page
    EXPECT_STREQ(open_rebuilt("overlap").what, "a run overlaps another or lies outside its region");
    runs = saved;
  }
  {
    auto saved = runs;
    runs[1].first_page = 8;  // page 8 of an 8-page region
    EXPECT_STREQ(open_rebuilt("outside").what, "a run overlaps another or lies outside its region");
    runs = saved;
  }
  {
    auto saved = runs;
    runs[0].pages = 0;
    runs[1].entry = 0;
    EXPECT_STREQ(open_rebuilt("empty-run").what, "a run overlaps another or lies outside its region");
    runs = saved;
  }
  {
    auto saved = runs;
    runs[1].entry = 5;  // its entries would overlap the first run's
    EXPECT_STREQ(open_rebuilt("entry").what, "a run's entries do not follow the previous run's");
    runs = saved;
  }
  {
    runs[2].first_page = ~uint64_t(0) - 2;  // first_page + pages wraps around
    EXPECT_STREQ(open_rebuilt("wrap").what, "a run overlaps another or lies outside its region");
  }
}

TEST_F(SnapshotIndexShape, AbsentOrUnknownKindInAnEntryRefused) {
  for (PageEntry bad : {make_entry(PageKind::kAbsent, 0, 0), PageEntry{uint64_t(9), 0},
                        PageEntry{uint64_t(PageKind::kZero) | (uint64_t(1) << kDepthShift), 0}}) {
    auto saved = entries;
    entries[6] = bad;
    ReadStatus s = open_rebuilt("kind");
    EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
    EXPECT_STREQ(s.what, "unknown page kind");
    entries = saved;
  }
}

TEST_F(SnapshotIndexShape, ParentPageWithoutItsAncestorRefused) {
  entries[2] = make_entry(PageKind::kParent, 0x10000, 1234, 1);
  // The data block entry 2 held has no data entry now either, but the parent page is named first.
  ReadStatus s = open_rebuilt("orphan-parent");
  EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
  EXPECT_STREQ(s.what, "a parent page names no ancestor");
}

TEST_F(SnapshotIndexShape, BlockWithTwoDataEntriesRefused) {
  ASSERT_EQ(entry_kind(entries[1]), PageKind::kData);
  ASSERT_EQ(entry_kind(entries[13]), PageKind::kDuplicate);
  ASSERT_EQ(entry_offset(entries[13]), entry_offset(entries[1]));
  // Region 1 page 6 now claims to be the first page with region 0 page 1's content too.
  entries[13] = make_entry(PageKind::kData, entry_offset(entries[1]), entries[1].checksum);
  ReadStatus s = open_rebuilt("twice");
  EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
  EXPECT_EQ(message(s), "malformed snapshot: a data block is referenced by two data entries");
}

TEST_F(SnapshotIndexShape, DuplicateBeforeItsBlocksDataEntryRefused) {
  // Swap roles: region 0 page 1 becomes the duplicate, region 1 page 5 the data entry.
  entries[1].offset_kind = entry_offset(entries[1]) | uint64_t(PageKind::kDuplicate);
  entries[12].offset_kind = entry_offset(entries[12]) | uint64_t(PageKind::kData);
  ReadStatus s = open_rebuilt("early");
  EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
  EXPECT_STREQ(s.what, "a duplicate page points at a block no earlier data entry holds");
}

TEST_F(SnapshotIndexShape, BlockWithoutDataEntryRefused) {
  ASSERT_EQ(entry_kind(entries[2]), PageKind::kData);  // a block of its own, no duplicates
  entries[2] = make_entry(PageKind::kZero, 0, 0);
  ReadStatus s = open_rebuilt("orphan");
  EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
  EXPECT_STREQ(s.what, "the data area has a block no data entry refers to");
}

TEST_F(SnapshotIndexShape, CountsDisagreeingWithTheIndexRefused) {
  for (RegionRecord& r : regions) recount(r, runs, entries);
  regions[1].duplicate_pages--;
  regions[1].data_pages++;
  ReadStatus s = open_variant("counts", rebuild_snapshot(bytes_, regions, runs, entries));
  EXPECT_STREQ(s.what, "region page counts disagree with its index");
}

TEST_F(SnapshotIndexShape, RegionLengthNearTheTopIsNotRoundedToZeroPages) {
  RegionRecord huge = regions[1];
  huge.run_first = runs.size();
  huge.run_count = 0;
  huge.entry_first = entries.size();
  huge.page_count = 0;
  huge.length = ~uint64_t(0) - 100;  // length + page_size - 1 would wrap to a few pages: 0 of them
  regions.push_back(huge);
  ReadStatus s = open_rebuilt("huge");
  EXPECT_EQ(s.error, ReadError::kMalformed) << message(s);
  EXPECT_STREQ(s.what, "region page count disagrees with its length");
}

TEST_F(SnapshotIndexShape, RebuiltGoodFileStillOpens) {
  // The builder itself: the same regions, runs and entries give a file the reader accepts.
  SnapshotReader r;
  ReadStatus s = r.open(write_variant("same", rebuild_snapshot(bytes_, regions, runs, entries)).c_str());
  ASSERT_TRUE(s.ok()) << message(s);
  EXPECT_TRUE(r.verify_all().ok());
}

TEST_F(SnapshotIndexShape, DuplicateWithAnotherChecksumIsTheOnlyBadPage) {
  // verify_all hashes each block once and compares every duplicate with that hash: a duplicate
  // whose recorded checksum is not its block's is still caught, and blamed alone.
  entries[13].checksum ^= 1;
  SnapshotReader r;
  ReadStatus s = r.open(write_variant("dupsum", rebuild_snapshot(bytes_, regions, runs, entries)).c_str());
  ASSERT_TRUE(s.ok()) << message(s);
  const VerifyReport rep = r.verify_all();
  EXPECT_EQ(rep.bad_pages, 1u);
  EXPECT_EQ(rep.first_bad_region, 1u);
  EXPECT_EQ(rep.first_bad_page, 6u);
  EXPECT_EQ(rep.pages_checked, 14u);  // 11 data entries (blocks) + 3 duplicates
  EXPECT_EQ(rep.blocks_checked, 11u);
  EXPECT_FALSE(r.verify_page(1, 6));
  EXPECT_TRUE(r.verify_page(1, 5));
}

TEST_F(SnapshotReaderErrors, MetadataIsNotReadAgainFromTheFile) {
  // Another process rewrites the file under an open reader: everything the reader checked at
  // open (regions, page index, module and executable paths) stays as it was checked. Page data
  // does come from the file, and its checksum (from the private copy) catches the change.
  const std::string path = write_variant("changing", bytes_);
  SnapshotReader r;
  ASSERT_TRUE(r.open(path.c_str()).ok());
  const RegionRecord region1 = r.region(1);
  const PageEntry entry = r.entry(1, 6);
  const std::string module_path = r.module(0).path;
  const std::string exe = r.exe_path();
  ASSERT_EQ(exe, "/usr/bin/app");

  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> junk(bytes_.size() - sizeof(FileHeader), 0xa5);
  ASSERT_EQ(pwrite(fd, junk.data(), junk.size(), sizeof(FileHeader)), ssize_t(junk.size()));
  ::close(fd);

  EXPECT_EQ(memcmp(&r.region(1), &region1, sizeof region1), 0);
  EXPECT_EQ(r.entry(1, 6).offset_kind, entry.offset_kind);
  EXPECT_EQ(r.entry(1, 6).checksum, entry.checksum);
  EXPECT_EQ(std::string(r.module(0).path), module_path);
  EXPECT_EQ(std::string(r.exe_path()), exe);
  ModuleIdentity same;
  r.executable_identity(&same);
  EXPECT_TRUE(r.check_identity(same).ok());
  EXPECT_EQ(r.page(1, 6).offset, entry_offset(entry));
  EXPECT_FALSE(r.verify_page(0, 1));  // the block now holds 0xa5 bytes
  EXPECT_EQ(r.verify_all().bad_pages, 14u);
}

TEST_F(SnapshotReaderErrors, OpensFromADescriptor) {
  const int fd = ::open(good_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  SnapshotReader r;
  ASSERT_TRUE(r.open_fd(fd).ok());
  EXPECT_EQ(r.region_count(), 2u);
  EXPECT_TRUE(r.verify_all().ok());
  EXPECT_NE(fcntl(fd, F_GETFD), -1);  // the caller's descriptor stays open
  ::close(fd);
  EXPECT_EQ(r.open_fd(fd).error, ReadError::kOpenFailed);
  EXPECT_FALSE(r.is_open());
}

}  // namespace
