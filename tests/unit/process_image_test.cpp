// Process images (FORMAT.md "Process images"): the writer's extra sections round-trip through the
// reader and ProcessImage, and every malformed table or inconsistent region is refused by name.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/snapshot/process_format.h"
#include "core/snapshot/process_image.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"

using namespace uffdlazy::snap;

namespace {

struct Table {
  std::vector<uint8_t> records;
  std::string strings = std::string(1, '\0');
  uint32_t count = 0, size = 0;

  // Room for every record a test adds: add() hands out references that must stay valid while
  // the next record is added (a reallocation left them dangling: ASan's heap-use-after-free).
  Table() { records.reserve(1 << 16); }

  template <class T>
  T& add() {
    size = sizeof(T);
    records.resize(records.size() + sizeof(T));
    count++;
    return *reinterpret_cast<T*>(&records[records.size() - sizeof(T)]);
  }
  StringRef str(const std::string& s) {
    StringRef r{uint32_t(strings.size()), uint32_t(s.size())};
    strings += s;
    strings.push_back('\0');
    return r;
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out(sizeof(TableHeader) + records.size());
    TableHeader h{count, size, uint32_t(out.size()), uint32_t(strings.size())};
    memcpy(out.data(), &h, sizeof h);
    memcpy(out.data() + sizeof h, records.data(), records.size());
    out.insert(out.end(), strings.begin(), strings.end());
    while (out.size() % 8) out.push_back(0);
    return out;
  }
};

// A small valid image: two threads, three mappings (one lazy), three descriptors (a file, a pipe
// holding bytes and a dup of it), two regions.
struct Fixture {
  Table process, threads, mappings, descriptors, objects;
  std::vector<uint8_t> object_data;
  uint64_t base = 0x7f0000000000;
  std::vector<uint8_t> page = std::vector<uint8_t>(4096, 0x5a);
  bool pack = false;  // regions written with RegionInfo::pack

  Fixture() {
    ProcessRecord& p = process.add<ProcessRecord>();
    p.page_size = 4096;
    p.cwd = process.str("/tmp");
    p.kernel_release = process.str("6.18");
    p.exe = process.str("/bin/true");
    p.auxv_words = 2;
    // What the restorer writes or jumps to lies in the first mapping (eager, writable, code).
    p.resume_block = base + 0x100;
    p.uffd_fd = 1000;
    for (ThreadRole role : {ThreadRole::kLeader, ThreadRole::kMonitor}) {
      ThreadRecord& t = threads.add<ThreadRecord>();
      t.role = uint32_t(role);
      t.context.rsp = base + 0x3000;
      t.context.rip = base + 0x10;
    }
    MappingRecord& a = mappings.add<MappingRecord>();
    a = MappingRecord{base, base + 0x4000, PROT_READ | PROT_WRITE | PROT_EXEC, uint32_t(MappingKind::kAnonymous), 0, 0, 0, 0, 0, 0, 0, {}};
    MappingRecord& l = mappings.add<MappingRecord>();
    l = MappingRecord{base + 0x4000, base + 0x8000, PROT_READ | PROT_WRITE, uint32_t(MappingKind::kAnonymous),
                      kMappingLazy, 0, 0, 0, 0, 0, 0, {}};
    MappingRecord& f = mappings.add<MappingRecord>();
    f = MappingRecord{base + 0x8000, base + 0x9000, PROT_READ, uint32_t(MappingKind::kFileShared), 0, 0, 0, 1, 2, 3, 4,
                      {}};
    f.path = mappings.str("/etc/hostname");
    DescriptorRecord& d = descriptors.add<DescriptorRecord>();
    d.fd = 3;
    d.same_as = -1;
    d.path = descriptors.str("/tmp/log");
    ObjectRecord& pipe = objects.add<ObjectRecord>();
    pipe.kind = uint32_t(ObjectKind::kPipe);
    pipe.data_offset = 0;
    pipe.data_length = 5;
    object_data = {'h', 'e', 'l', 'l', 'o', 0, 0, 0};
    DescriptorRecord& r = descriptors.add<DescriptorRecord>();
    r.fd = 4;
    r.same_as = -1;
    r.kind = uint32_t(DescriptorKind::kObject);
    r.object = 1;
    DescriptorRecord& dup = descriptors.add<DescriptorRecord>();
    dup = r;
    dup.fd = 5;
    dup.same_as = 4;
  }

  // Writes the image with regions at the given (start, pages) and returns the reader's status
  // and, when the file reads, ProcessImage's.
  ReadStatus write_and_open(const std::string& path, std::vector<std::pair<uint64_t, uint64_t>> regions,
                            ProcessImage* image, SnapshotReader* reader) {
    SnapshotWriter w;
    WriterOptions o;
    o.sync = false;
    o.file_mode = 0600;
    EXPECT_TRUE(w.open(path.c_str(), o).ok());
    ModuleIdentity exe;
    exe.set_path("/bin/true", 9);
    EXPECT_TRUE(w.begin(exe, kFlagProcessImage).ok());
    for (auto [start, pages] : regions) {
      RegionInfo info;
      info.start = start;
      info.length = pages * 4096;
      info.pack = pack;
      EXPECT_TRUE(w.add_region_with(info, [&](uint64_t) -> const void* { return page.data(); }).ok());
    }
    std::vector<uint8_t> sections[6] = {process.bytes(), threads.bytes(), mappings.bytes(),
                                        descriptors.bytes(), objects.bytes(), object_data};
    // An image with no objects (as before objects existed) has neither of their sections.
    const uint32_t count = objects.count ? 6 : 4;
    for (uint32_t i = 0; i < count; i++) {
      EXPECT_TRUE(w.add_section(16 + i, kSectionRequired, sections[i].data(), sections[i].size()).ok());
    }
    EXPECT_TRUE(w.commit().ok());
    ReadStatus st = reader->open(path.c_str());
    if (!st.ok()) return st;
    return image->open(*reader);
  }
};

struct ProcessImageTest : ::testing::Test {
  std::string dir;
  void SetUp() override {
    char tmpl[] = "/tmp/uffdlazy-pimg-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string file(const char* name) { return dir + "/" + name; }
};

TEST_F(ProcessImageTest, RoundTrip) {
  Fixture f;
  SnapshotReader reader;
  ProcessImage image;
  ASSERT_TRUE(f.write_and_open(file("ok.img"), {{f.base, 2}, {f.base + 0x4000, 4}}, &image, &reader).ok());
  EXPECT_TRUE(ProcessImage::is_process_image(reader));
  EXPECT_EQ(reader.header().flags & kFlagProcessImage, kFlagProcessImage);
  EXPECT_STREQ(image.process_string(image.process().cwd), "/tmp");
  EXPECT_EQ(image.thread_count(), 2u);
  EXPECT_EQ(image.mapping_count(), 3u);
  EXPECT_STREQ(image.mapping_string(image.mapping(2).path), "/etc/hostname");
  EXPECT_EQ(image.descriptor(0).fd, 3);
  EXPECT_EQ(image.descriptor(0).same_as, -1);
  EXPECT_EQ(image.descriptor(2).same_as, 4);
  ASSERT_EQ(image.object_count(), 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(image.object_data(image.object(0))), 5), "hello");
  EXPECT_FALSE(image.region_lazy(0));
  EXPECT_TRUE(image.region_lazy(1));
  EXPECT_EQ(image.mapping_at(f.base + 0x5000), 1);
  EXPECT_EQ(image.mapping_at(f.base + 0x9000), -1);
  EXPECT_EQ(std::filesystem::status(file("ok.img")).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(reader.verify_all().ok());
}

TEST_F(ProcessImageTest, MalformedImagesAreRefusedByName) {
  struct Case {
    const char* name;
    void (*spoil)(Fixture&);
    std::vector<std::pair<uint64_t, uint64_t>> regions;  // relative to base
    const char* what;
  };
  const Case cases[] = {
      {"no leader", [](Fixture& f) { reinterpret_cast<ThreadRecord*>(f.threads.records.data())->role = 1; }, {},
       "no thread-group leader"},
      {"bad role", [](Fixture& f) { reinterpret_cast<ThreadRecord*>(f.threads.records.data())->role = 9; }, {},
       "unknown thread role"},
      {"string out of range",
       [](Fixture& f) { reinterpret_cast<ProcessRecord*>(f.process.records.data())->cwd.offset = 1000; }, {},
       "process record string out of range"},
      {"mappings out of order",
       [](Fixture& f) { reinterpret_cast<MappingRecord*>(f.mappings.records.data())->end = 0x7f0000006000; }, {},
       "mapping out of order"},
      {"region partly lazy", [](Fixture&) {}, {{0x2000, 4}}, "a stored region is partly lazy"},
      {"region outside", [](Fixture&) {}, {{0x10000, 1}}, "a stored region lies outside every mapping"},
      {"region in a shared file", [](Fixture&) {}, {{0x8000, 1}}, "a stored region lies in a mapping that holds no pages"},
      {"page size", [](Fixture& f) { reinterpret_cast<ProcessRecord*>(f.process.records.data())->page_size = 8192; }, {},
       "process page size disagrees with the header"},
      {"unknown object kind", [](Fixture& f) { reinterpret_cast<ObjectRecord*>(f.objects.records.data())->kind = 99; }, {},
       "unknown object kind"},
      {"object data out of its section",
       [](Fixture& f) { reinterpret_cast<ObjectRecord*>(f.objects.records.data())->data_length = 9; }, {},
       "object data out of its section"},
      {"descriptor object out of range",
       [](Fixture& f) { reinterpret_cast<DescriptorRecord*>(f.descriptors.records.data())[1].object = 2; }, {},
       "descriptor object out of range"},
      {"dup of a descriptor after it",
       [](Fixture& f) { reinterpret_cast<DescriptorRecord*>(f.descriptors.records.data())[2].same_as = 6; }, {},
       "descriptor shares a description it does not follow"},
      {"shared mapping without its object",
       [](Fixture& f) { reinterpret_cast<MappingRecord*>(f.mappings.records.data())->kind = uint32_t(MappingKind::kShared); },
       {}, "shared mapping without its shared memory"},
      {"resume block outside",
       [](Fixture& f) { reinterpret_cast<ProcessRecord*>(f.process.records.data())->resume_block = 0x7000; }, {},
       "the shim's resume block lies outside the memory a resume puts in place"},
      {"resume block in lazy memory",
       [](Fixture& f) { reinterpret_cast<ProcessRecord*>(f.process.records.data())->resume_block = f.base + 0x4000; }, {},
       "the shim's resume block lies outside the memory a resume puts in place"},
      {"rseq area outside",
       [](Fixture& f) {
         auto* t = reinterpret_cast<ThreadRecord*>(f.threads.records.data());
         t->rseq_area = f.base + 0x3ff0;
         t->rseq_length = 32;
       },
       {}, "a thread's rseq area lies outside the memory a resume puts in place"},
      {"stack pointer outside",
       [](Fixture& f) { reinterpret_cast<ThreadRecord*>(f.threads.records.data())->context.rsp = 0x1000; }, {},
       "a thread's stack pointer lies outside its stack"},
      {"code outside", [](Fixture& f) { reinterpret_cast<ThreadRecord*>(f.threads.records.data())->context.rip = f.base + 0x8000; },
       {}, "a thread continues outside the process's code"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Fixture f;
    c.spoil(f);
    std::vector<std::pair<uint64_t, uint64_t>> regions;
    for (auto [off, pages] : c.regions) regions.push_back({f.base + off, pages});
    SnapshotReader reader;
    ProcessImage image;
    ReadStatus st = f.write_and_open(file("bad.img"), regions, &image, &reader);
    EXPECT_EQ(st.error, ReadError::kMalformed);
    EXPECT_STREQ(st.what ? st.what : "", c.what);
  }
}

TEST_F(ProcessImageTest, PackedPagesOnlyInRegionsTheRestorerPutsInPlace) {
  // The monitor serves a lazy region's pages whole from the file mapping: a packed page there
  // could not be served, so the image is refused; in an eager region (the restorer unpacks it),
  // the same page reads back.
  for (bool lazy : {false, true}) {
    SCOPED_TRACE(lazy ? "lazy" : "eager");
    Fixture f;
    f.pack = true;
    f.page.assign(4096, 0);
    f.page[100] = 1;
    SnapshotReader reader;
    ProcessImage image;
    ReadStatus st = f.write_and_open(file("packed.img"), {{f.base + (lazy ? 0x4000 : 0x1000), 1}}, &image, &reader);
    if (lazy) {
      EXPECT_EQ(st.error, ReadError::kMalformed);
      EXPECT_STREQ(st.what ? st.what : "", "a lazy region has packed pages");
      continue;
    }
    ASSERT_TRUE(st.ok()) << (st.what ? st.what : "");
    EXPECT_EQ(reader.region(0).packed_pages, 1u);
    std::vector<uint8_t> back(4096);
    ASSERT_TRUE(reader.unpack(reader.entry(0, 0), back.data()));
    EXPECT_EQ(back, f.page);
  }
}

TEST_F(ProcessImageTest, ADamagedSectionFailsItsChecksum) {
  Fixture f;
  SnapshotReader reader;
  ProcessImage image;
  const std::string path = file("damaged.img");
  ASSERT_TRUE(f.write_and_open(path, {}, &image, &reader).ok());
  reader.close();
  // A byte of the descriptor section's strings.
  std::FILE* fp = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(fp, nullptr);
  FileHeader h;
  ASSERT_EQ(std::fread(&h, sizeof h, 1, fp), 1u);
  long at = -1;
  for (uint32_t i = 0; i < h.section_count; i++) {
    SectionEntry e;
    std::fseek(fp, long(h.section_table_offset + uint64_t(i) * h.section_entry_size), SEEK_SET);
    ASSERT_EQ(std::fread(&e, sizeof e, 1, fp), 1u);
    if (e.type == uint32_t(ProcessSection::kDescriptors)) at = long(e.offset + e.length) - 4;
  }
  ASSERT_GE(at, 0);
  std::fseek(fp, at, SEEK_SET);
  std::fputc('X', fp);
  std::fclose(fp);
  ReadStatus st = reader.open(path.c_str());
  EXPECT_EQ(st.error, ReadError::kIndexChecksum);
}

// The object data section is left in the file by the reader: ProcessImage checks its checksum,
// unless told its caller did (a resumed process's monitor).
TEST_F(ProcessImageTest, ADamagedObjectDataSectionFailsItsChecksumWhenChecked) {
  Fixture f;
  SnapshotReader reader;
  ProcessImage image;
  const std::string path = file("object-data.img");
  ASSERT_TRUE(f.write_and_open(path, {}, &image, &reader).ok());
  reader.close();
  std::FILE* fp = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(fp, nullptr);
  FileHeader h;
  ASSERT_EQ(std::fread(&h, sizeof h, 1, fp), 1u);
  long at = -1;
  for (uint32_t i = 0; i < h.section_count; i++) {
    SectionEntry e;
    std::fseek(fp, long(h.section_table_offset + uint64_t(i) * h.section_entry_size), SEEK_SET);
    ASSERT_EQ(std::fread(&e, sizeof e, 1, fp), 1u);
    if (e.type == uint32_t(ProcessSection::kObjectData)) at = long(e.offset);
  }
  ASSERT_GE(at, 0);
  std::fseek(fp, at, SEEK_SET);
  std::fputc('j', fp);
  std::fclose(fp);
  ASSERT_TRUE(reader.open(path.c_str()).ok());
  ProcessImage checked;
  ReadStatus st = checked.open(reader);
  EXPECT_EQ(st.error, ReadError::kIndexChecksum);
  EXPECT_STREQ(st.what ? st.what : "", "object data section");
  ProcessImage trusting;
  EXPECT_TRUE(trusting.open(reader, /*check_object_data=*/false).ok());
}

// An image written before descriptors had same_as and object (56-byte records) still reads, each
// descriptor its own description.
TEST_F(ProcessImageTest, OneZeroDescriptorRecordsReadWithDefaults) {
  Fixture f;
  f.objects = Table{};
  f.object_data.clear();
  f.descriptors = Table{};
  DescriptorRecord& d = f.descriptors.add<DescriptorRecord>();
  d.fd = 7;
  d.path = f.descriptors.str("/tmp/old");
  d.same_as = 1234;  // bytes a 1.0 reader never wrote: cut off below
  d.object = 99;
  f.descriptors.size = kDescriptorRecordSize10;
  f.descriptors.records.resize(kDescriptorRecordSize10);
  SnapshotReader reader;
  ProcessImage image;
  ASSERT_TRUE(f.write_and_open(file("old.img"), {}, &image, &reader).ok());
  ASSERT_EQ(image.descriptor_count(), 1u);
  EXPECT_EQ(image.descriptor(0).fd, 7);
  EXPECT_EQ(image.descriptor(0).same_as, -1);
  EXPECT_EQ(image.descriptor(0).object, 0u);
  EXPECT_STREQ(image.descriptor_string(image.descriptor(0).path), "/tmp/old");
}

}  // namespace
