// Every way a snapshot file can be bad is reported as its own error, with a clear message.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

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
  b[offsetof(FileHeader, version_major)] = 2;
  reseal_header(b);
  ReadStatus s = open_variant("v2", b);
  EXPECT_EQ(s.error, ReadError::kUnsupportedVersion);
  EXPECT_EQ(s.a, 2u);
  EXPECT_NE(message(s).find("version 2.0"), std::string::npos);
  b[offsetof(FileHeader, version_major)] = 0;  // even unsealed, the version is named first
  EXPECT_EQ(open_variant("v0", b).error, ReadError::kUnsupportedVersion);
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
  const SectionEntry index = section(SectionType::kPageIndex);
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
    b[index.offset + 8 * sizeof(PageEntry) + 3 * sizeof(PageEntry) + 9] ^= 1;  // region 1, page 3
    ReadStatus s = open_variant("idx", b);
    EXPECT_EQ(s.error, ReadError::kIndexChecksum);
    EXPECT_EQ(s.what, nullptr);
    EXPECT_EQ(s.a, 1u);
    EXPECT_EQ(message(s), "index checksum mismatch in the page index of region 1 (the file is damaged)");
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

}  // namespace
