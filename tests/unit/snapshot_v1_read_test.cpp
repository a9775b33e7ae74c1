// Snapshots of format 1.0 and 1.1 (an index entry for every page, present or not; 1.1 with its
// index digest at header offset 160) are still read by a 2.x reader: every page reads back as the
// 1.x file held it, the digest is the one recorded, and a damaged 1.x index is still refused.
// The files are built here byte by byte from the 1.x layout (FORMAT.md, "Older versions"), not by
// this build's writer, which writes 2.0 only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/index_digest.h"
#include "core/snapshot/snapshot_reader.h"

using namespace uffdlazy::snap;

namespace {

// One page description: kind and, for data and duplicates, a fill byte (duplicates repeat an
// earlier data page with the same byte).
struct Page {
  PageKind kind;
  uint8_t fill;
};

class SnapshotV1Read : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uffdlazy-v1read-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ps_ = uint32_t(sysconf(_SC_PAGESIZE));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Region 0: data 0x11, absent, zero, duplicate of 0x11. Region 1: absent, data 0x22, data 0x33.
  const std::vector<std::vector<Page>> regions_ = {
      {{PageKind::kData, 0x11}, {PageKind::kAbsent, 0}, {PageKind::kZero, 0}, {PageKind::kDuplicate, 0x11}},
      {{PageKind::kAbsent, 0}, {PageKind::kData, 0x22}, {PageKind::kData, 0x33}}};
  static uint64_t region_start(size_t r) { return 0x10000000ull * (r + 1); }

  // A 1.x file of minor `minor` (1: with its index digest) as the 1.x writer laid it out: header,
  // data, strings, modules, regions, page index, section table.
  std::vector<uint8_t> build(uint16_t minor) {
    const char path[] = "/usr/bin/old";
    const uint32_t header_size = uint32_t((256 + sizeof path + 7) / 8 * 8);
    std::vector<uint8_t> f((header_size + ps_ - 1) / ps_ * ps_, 0);
    const uint64_t data_offset = f.size();
    std::vector<PageEntry> index;
    std::vector<RegionRecordV1> recs;
    std::vector<std::pair<uint8_t, uint64_t>> blocks;  // fill -> offset
    for (size_t r = 0; r < regions_.size(); r++) {
      RegionRecordV1 rec{};
      rec.start = region_start(r);
      rec.length = regions_[r].size() * ps_;
      rec.prot = 3;
      rec.map_flags = 0x22;
      rec.page_count = regions_[r].size();
      rec.index_first = index.size();
      rec.site_module = 0xffffffffu;
      for (const Page& p : regions_[r]) {
        std::vector<uint8_t> content(ps_, p.fill);
        const uint64_t sum = checksum(content.data(), ps_);
        switch (p.kind) {
          case PageKind::kAbsent: index.push_back(PageEntry{0, 0}); rec.absent_pages++; break;
          case PageKind::kZero: index.push_back(make_entry(PageKind::kZero, 0, 0)); rec.zero_pages++; break;
          case PageKind::kData:
            blocks.push_back({p.fill, f.size()});
            index.push_back(make_entry(PageKind::kData, f.size(), sum));
            f.insert(f.end(), content.begin(), content.end());
            rec.data_pages++;
            break;
          default:
            for (auto& b : blocks) {
              if (b.first == p.fill) index.push_back(make_entry(PageKind::kDuplicate, b.second, sum));
            }
            rec.duplicate_pages++;
        }
      }
      rec.index_checksum = checksum(index.data() + rec.index_first, rec.page_count * sizeof(PageEntry));
      recs.push_back(rec);
    }
    SectionEntry table[5];
    table[0] = SectionEntry{uint32_t(SectionType::kData), kSectionRequired | kSectionNoChecksum, data_offset,
                            f.size() - data_offset, 0};
    auto add = [&](SectionEntry* e, SectionType t, const void* p, size_t n) {
      while (f.size() % 8) f.push_back(0);
      *e = SectionEntry{uint32_t(t), kSectionRequired, f.size(), n, checksum(p, n)};
      f.insert(f.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    const char strings[8] = {};
    add(&table[1], SectionType::kStrings, strings, 1);
    add(&table[2], SectionType::kModules, strings, 0);
    add(&table[3], SectionType::kRegions, recs.data(), recs.size() * sizeof recs[0]);
    add(&table[4], SectionType::kPageEntries, index.data(), index.size() * sizeof index[0]);  // 1.x's page index
    while (f.size() % 8) f.push_back(0);
    const uint64_t table_offset = f.size();
    f.insert(f.end(), reinterpret_cast<uint8_t*>(table), reinterpret_cast<uint8_t*>(table) + sizeof table);

    FileHeader h{};
    memcpy(h.magic, kMagic, 8);
    h.version_major = 1;
    h.version_minor = minor;
    h.header_size = header_size;
    h.fixed_size = 256;
    h.page_size = ps_;
    h.created_ns = 1;
    h.file_size = f.size();
    h.section_table_offset = table_offset;
    h.section_count = 5;
    h.section_entry_size = sizeof(SectionEntry);
    h.section_table_checksum = checksum(table, sizeof table);
    h.exe_path_offset = 256;
    h.exe_path_length = sizeof path - 1;
    memcpy(f.data(), &h, sizeof h);
    memcpy(f.data() + 256, path, sizeof path);
    if (minor >= 1) {
      uint8_t digest[32];
      EXPECT_TRUE(compute_index_digest(f.data(), f.size(), digest));
      memcpy(f.data() + offsetof(FileHeader, index_digest), digest, 32);
    }
    const uint64_t sum = checksum_with_zeroed_u64(f.data(), header_size, offsetof(FileHeader, header_checksum));
    memcpy(f.data() + offsetof(FileHeader, header_checksum), &sum, 8);
    return f;
  }

  std::string write(const std::string& name, const std::vector<uint8_t>& b) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    return p;
  }

  // Every page reads back as the 1.x file held it.
  void expect_same_pages(const SnapshotReader& r) {
    ASSERT_EQ(r.region_count(), regions_.size());
    for (size_t i = 0; i < regions_.size(); i++) {
      const RegionRecord& rec = r.region(i);
      EXPECT_EQ(rec.start, region_start(i));
      ASSERT_EQ(rec.page_count, regions_[i].size());
      for (size_t p = 0; p < regions_[i].size(); p++) {
        const Page want = regions_[i][p];
        const PageRef got = r.page(i, p);
        EXPECT_EQ(got.kind, want.kind) << "region " << i << " page " << p;
        if (want.kind == PageKind::kData || want.kind == PageKind::kDuplicate) {
          ASSERT_NE(got.data, nullptr);
          EXPECT_EQ(got.data[0], want.fill);
          EXPECT_EQ(got.data[ps_ - 1], want.fill);
        }
        EXPECT_TRUE(r.verify_page(i, p));
      }
    }
    EXPECT_EQ(r.region(0).absent_pages, 1u);
    EXPECT_EQ(r.region(0).run_count, 2u);  // pages 0 and 2..3
    EXPECT_EQ(r.region(1).run_count, 1u);  // pages 1..2
    EXPECT_TRUE(r.verify_all().ok());
    EXPECT_STREQ(r.writer_version(), "");  // 1.x did not record it
  }

  std::string dir_;
  uint32_t ps_ = 4096;
};

TEST_F(SnapshotV1Read, Format10IsRead) {
  SnapshotReader r;
  ASSERT_TRUE(r.open(write("v10.snap", build(0)).c_str()).ok());
  EXPECT_EQ(r.header().version_major, 1);
  EXPECT_EQ(r.header().version_minor, 0);
  EXPECT_FALSE(has_index_digest(r.recorded_index_digest()));
  expect_same_pages(r);
}

TEST_F(SnapshotV1Read, Format11IsReadWithItsIndexDigest) {
  SnapshotReader r;
  ASSERT_TRUE(r.open(write("v11.snap", build(1)).c_str()).ok());
  EXPECT_EQ(r.header().version_minor, 1);
  ASSERT_TRUE(has_index_digest(r.recorded_index_digest()));
  uint8_t now[32];
  ASSERT_TRUE(r.compute_index_digest(now));
  EXPECT_EQ(memcmp(now, r.recorded_index_digest(), 32), 0);
  expect_same_pages(r);
}

TEST_F(SnapshotV1Read, DamagedFormat1IndexIsRefused) {
  std::vector<uint8_t> b = build(0);
  FileHeader h;
  memcpy(&h, b.data(), sizeof h);
  SectionEntry index;
  memcpy(&index, b.data() + h.section_table_offset + 4 * sizeof index, sizeof index);
  ASSERT_EQ(index.type, uint32_t(SectionType::kPageEntries));
  // Region 0's absent page given a kind: the section checksum no longer matches.
  b[index.offset + 16] = uint8_t(PageKind::kZero);
  SnapshotReader r;
  EXPECT_EQ(r.open(write("bad.snap", b).c_str()).error, ReadError::kIndexChecksum);
  // The same with the section checksum made to match: the region's own index checksum catches it.
  index.checksum = checksum(b.data() + index.offset, index.length);
  memcpy(b.data() + h.section_table_offset + 4 * sizeof index, &index, sizeof index);
  const uint64_t table_sum = checksum(b.data() + h.section_table_offset, 5 * sizeof index);
  memcpy(b.data() + offsetof(FileHeader, section_table_checksum), &table_sum, 8);
  const uint64_t sum = checksum_with_zeroed_u64(b.data(), h.header_size, offsetof(FileHeader, header_checksum));
  memcpy(b.data() + offsetof(FileHeader, header_checksum), &sum, 8);
  EXPECT_EQ(r.open(write("bad2.snap", b).c_str()).error, ReadError::kIndexChecksum);
}

}  // namespace
