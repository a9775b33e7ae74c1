// Packed pages (format 2.1): a mostly zero page of a region the reader puts in place itself is
// stored as its non-zero spans. What a user relies on: the page reads back byte for byte, every
// check still holds (section checksum, page checksum, digest, the packed blocks' shape), and a
// file without packed pages is what a 2.0 reader reads.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/index_digest.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

namespace {

struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/uffdlazy-packed-XXXXXX";
    const char* d = mkdtemp(tmpl);
    path = d ? d : "/tmp";
  }
  ~Dir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

const uint32_t kPs = uint32_t(sysconf(_SC_PAGESIZE));
constexpr uint64_t kStart = 0x7f0000000000ull;

// Pages of every shape: mostly zero (a few words, a span at each end, words one zero word apart),
// all zero, and full.
std::vector<std::vector<uint8_t>> sample_pages() {
  std::vector<std::vector<uint8_t>> pages;
  auto page = [&] { return std::vector<uint8_t>(kPs, 0); };
  auto p = page();
  p[17] = 1;
  p[kPs - 1] = 2;
  pages.push_back(p);
  p = page();
  for (uint32_t i = 0; i < 200; i++) p[100 + i] = uint8_t(i + 1);
  pages.push_back(p);
  p = page();
  for (uint32_t w = 0; w < 100; w += 2) p[w * 8] = 9;  // one zero word between non-zero ones: one span
  pages.push_back(p);
  pages.push_back(page());  // zero
  p = page();
  for (uint32_t i = 0; i < kPs; i++) p[i] = uint8_t(i * 13 + 5) | 1;  // full: stored as data
  pages.push_back(p);
  p = page();
  p[0] = 7;  // its own span at the very start
  pages.push_back(p);
  return pages;
}

class VectorPages final : public PageProvider {
 public:
  explicit VectorPages(const std::vector<std::vector<uint8_t>>& p) : pages_(p) {}
  const void* page(uint64_t i) override { return i < pages_.size() ? pages_[i].data() : nullptr; }

 private:
  const std::vector<std::vector<uint8_t>>& pages_;
};

void write_file(const std::string& path, const std::vector<std::vector<uint8_t>>& pages, bool pack) {
  ModuleIdentity exe;
  exe.set_path("/usr/bin/app", 12);
  SnapshotWriter w;
  WriterOptions opt;
  opt.sync = false;
  ASSERT_TRUE(w.open(path.c_str(), opt).ok());
  ASSERT_TRUE(w.begin(exe, 0).ok());
  VectorPages provider(pages);
  RegionInfo info{kStart, pages.size() * kPs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, CallSite{}};
  info.pack = pack;
  ASSERT_TRUE(w.add_region(info, provider).ok());
  ASSERT_TRUE(w.commit().ok());
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::vector<uint8_t> b(std::filesystem::file_size(path));
  FILE* f = fopen(path.c_str(), "rb");
  EXPECT_EQ(fread(b.data(), 1, b.size(), f), b.size());
  fclose(f);
  return b;
}

void write_all(const std::string& path, const std::vector<uint8_t>& b) {
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_EQ(fwrite(b.data(), 1, b.size(), f), b.size());
  fclose(f);
}

// The section table entry of `type` in a file's bytes (nullptr when there is none).
SectionEntry* section(std::vector<uint8_t>& b, uint32_t type) {
  FileHeader h;
  memcpy(&h, b.data(), sizeof h);
  for (uint32_t i = 0; i < h.section_count; i++) {
    auto* e = reinterpret_cast<SectionEntry*>(b.data() + h.section_table_offset + uint64_t(i) * h.section_entry_size);
    if (e->type == type) return e;
  }
  return nullptr;
}

// Makes the file's checksums and digest agree with its bytes again (as a writer that meant them
// would have), so only the check under test can refuse it.
void reseal(std::vector<uint8_t>& b) {
  FileHeader h;
  memcpy(&h, b.data(), sizeof h);
  for (uint32_t i = 0; i < h.section_count; i++) {
    auto* e = reinterpret_cast<SectionEntry*>(b.data() + h.section_table_offset + uint64_t(i) * h.section_entry_size);
    if (!(e->flags & kSectionNoChecksum)) e->checksum = checksum(b.data() + e->offset, e->length);
  }
  auto* hp = reinterpret_cast<FileHeader*>(b.data());
  hp->section_table_checksum = checksum(b.data() + h.section_table_offset, uint64_t(h.section_count) * h.section_entry_size);
  uint8_t digest[32];
  memset(hp->index_digest, 0, sizeof hp->index_digest);
  hp->header_checksum = 0;
  ASSERT_TRUE(compute_index_digest(b.data(), b.size(), digest));
  memcpy(hp->index_digest, digest, 32);
  hp->header_checksum = checksum(b.data(), hp->header_size);
}

TEST(SnapshotPacked, MostlyZeroPagesAreStoredAsTheirSpansAndReadBackExactly) {
  Dir d;
  const auto pages = sample_pages();
  write_file(d.file("packed.snap"), pages, true);
  write_file(d.file("plain.snap"), pages, false);
  SnapshotReader r;
  ASSERT_TRUE(r.open(d.file("packed.snap").c_str()).ok());
  EXPECT_EQ(r.header().version_major, 2);
  EXPECT_EQ(r.header().version_minor, 1);
  const RegionRecord& rec = r.region(0);
  EXPECT_EQ(rec.packed_pages, 4u);  // the four mostly zero pages
  EXPECT_EQ(rec.zero_pages, 1u);
  EXPECT_EQ(rec.data_pages, 1u);  // the full one: its packed form would be larger than half a page
  EXPECT_EQ(r.data_length(), uint64_t(kPs));
  EXPECT_LT(r.packed_length(), uint64_t(kPs));
  std::vector<uint8_t> got(kPs);
  for (uint64_t i = 0; i < pages.size(); i++) {
    SCOPED_TRACE(i);
    const PageRef ref = r.page(0, i);
    if (ref.kind == PageKind::kPacked) {
      ASSERT_TRUE(r.unpack(r.entry(0, i), got.data()));
      EXPECT_EQ(got, pages[i]);
      EXPECT_EQ(ref.data, nullptr);  // no block to serve from: only the restorer unpacks
    } else if (ref.kind == PageKind::kData) {
      EXPECT_EQ(memcmp(ref.data, pages[i].data(), kPs), 0);
    } else {
      EXPECT_EQ(ref.kind, PageKind::kZero);
    }
    EXPECT_TRUE(r.verify_page(0, i));
  }
  EXPECT_TRUE(r.verify_all().ok());
  EXPECT_EQ(r.verify_all().pages_checked, 5u);
  // Four pages' blocks are not in the file, and their spans take less than one.
  EXPECT_LE(std::filesystem::file_size(d.file("packed.snap")) + 3 * kPs, std::filesystem::file_size(d.file("plain.snap")));
}

TEST(SnapshotPacked, AFileWithoutPackedPagesIsWhatA20ReaderReads) {
  Dir d;
  write_file(d.file("plain.snap"), sample_pages(), false);
  auto b = read_all(d.file("plain.snap"));
  EXPECT_EQ(section(b, uint32_t(SectionType::kPacked)), nullptr);  // what a 2.0 reader reads as its own
  // And a 2.0 file (the same bytes, minor 0, packed_pages a reserved zero) is read as it was.
  reinterpret_cast<FileHeader*>(b.data())->version_minor = 0;
  reseal(b);
  write_all(d.file("v20.snap"), b);
  SnapshotReader r;
  ASSERT_TRUE(r.open(d.file("v20.snap").c_str()).ok());
  EXPECT_EQ(r.header().version_minor, 0);
  EXPECT_EQ(r.region(0).packed_pages, 0u);
  EXPECT_TRUE(r.verify_all().ok());
}

TEST(SnapshotPacked, AReaderThatDoesNotKnowPackedPagesRefusesTheFile) {
  // The packed section is flagged required: a 2.0 reader, which does not know its type, must
  // refuse the file rather than read packed entries as something else. Seen here by giving the
  // section a type this reader does not know either.
  Dir d;
  write_file(d.file("packed.snap"), sample_pages(), true);
  auto b = read_all(d.file("packed.snap"));
  SectionEntry* e = section(b, uint32_t(SectionType::kPacked));
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->flags & kSectionRequired);
  e->type = 15;
  reseal(b);
  write_all(d.file("future.snap"), b);
  SnapshotReader r;
  const ReadStatus s = r.open(d.file("future.snap").c_str());
  EXPECT_EQ(s.error, ReadError::kUnknownRequiredSection);
}

TEST(SnapshotPacked, DamagedPackedBytesAreRefused) {
  Dir d;
  write_file(d.file("packed.snap"), sample_pages(), true);
  const auto good = read_all(d.file("packed.snap"));
  {
    // A changed byte of a span: the section checksum says so at open.
    auto b = good;
    const SectionEntry* e = section(b, uint32_t(SectionType::kPacked));
    b[e->offset + e->length - 1] ^= 0x40;  // the last byte of the last span
    write_all(d.file("bad.snap"), b);
    SnapshotReader r;
    EXPECT_EQ(r.open(d.file("bad.snap").c_str()).error, ReadError::kIndexChecksum);
    // Resealed (a writer that meant it): the section is intact, the page is not what its entry's
    // checksum says.
    reseal(b);
    write_all(d.file("bad.snap"), b);
    SnapshotReader r2;
    ASSERT_TRUE(r2.open(d.file("bad.snap").c_str()).ok());
    EXPECT_FALSE(r2.verify_all().ok());
    EXPECT_FALSE(r2.verify_page(0, 5));  // the last packed page
    EXPECT_TRUE(r2.verify_page(0, 0));
  }
  {
    // A span that runs past the page, however well sealed, is malformed: the first block's first
    // span (count, gap and length one-byte varints) made to start at the page's end.
    auto b = good;
    const SectionEntry* e = section(b, uint32_t(SectionType::kPacked));
    ASSERT_EQ(b[e->offset] & 0x80, 0);
    const uint64_t at = e->offset + 1;
    const uint32_t gap = kPs;  // then a length of at least 1 ends past the page
    b[at] = uint8_t(0x80 | (gap & 0x7f));  // the gap grows to two bytes, eating the length byte
    b[at + 1] = uint8_t(gap >> 7);
    reseal(b);
    write_all(d.file("bad.snap"), b);
    SnapshotReader r;
    const ReadStatus st = r.open(d.file("bad.snap").c_str());
    EXPECT_EQ(st.error, ReadError::kMalformed);
  }
  {
    // Bytes after the last packed block belong to no page.
    auto b = good;
    SectionEntry* e = section(b, uint32_t(SectionType::kPacked));
    const uint64_t table = reinterpret_cast<FileHeader*>(b.data())->section_table_offset;
    ASSERT_GE(table, e->offset + e->length);
    e->length -= 1;  // the last block cut short by a byte
    reseal(b);
    write_all(d.file("bad.snap"), b);
    SnapshotReader r;
    EXPECT_EQ(r.open(d.file("bad.snap").c_str()).error, ReadError::kMalformed);
  }
}

TEST(SnapshotPacked, PackRoundTripsEveryShape) {
  std::vector<uint8_t> packed(kPs), back(kPs);
  for (const auto& p : sample_pages()) {
    const uint64_t n = pack_page(p.data(), kPs, packed.data(), kPs);
    bool zero = true;
    for (uint8_t c : p) zero = zero && !c;
    if (zero) {
      EXPECT_EQ(n, 0u);
      continue;
    }
    if (!n) continue;  // too large
    EXPECT_EQ(unpack_page(packed.data(), n, kPs, back.data()), n);
    EXPECT_EQ(back, p);
    // Cut short anywhere: refused, never read past what it was given.
    for (uint64_t cut = 0; cut < n; cut++) EXPECT_EQ(unpack_page(packed.data(), cut, kPs, back.data()), 0u);
  }
}

}  // namespace
