// Fuzzes the snapshot reader the way its users drive it: open (from a memfd holding the input),
// check the executable identity, walk every region and page, verify every block; and set up
// what a restore builds on an opened snapshot (the page source and the region matcher).
// Beyond the sanitizers it checks what callers rely on: a page's data lies inside the file
// mapping, paths end in NUL where their length says, and the counts add up.
//
// Almost any mutation breaks a checksum, and a reader that stops there is only fuzzed up to its
// checksums. So each input is read twice: as it is, and "resealed": with every checksum the
// harness can locate (sections, section table, header) recomputed, so mutations of the structure
// reach the structural checks behind them.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "core/base/line_writer.h"
#include "core/snapshot/checksum.h"
#include "core/snapshot/executable_identity.h"
#include "core/snapshot/process_image.h"
#include "core/snapshot/region_matcher.h"
#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_reader.h"
#include "tests/fuzz/fuzz_budget.h"

using namespace uffdlazy::snap;

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

int input_fd(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("snapshot-fuzz", MFD_CLOEXEC);
  require(fd >= 0);
  require(ftruncate(fd, 0) == 0);
  for (size_t done = 0; done < size;) {
    const ssize_t n = pwrite(fd, data + done, size - done, off_t(done));
    require(n > 0);
    done += size_t(n);
  }
  return fd;
}

bool inside(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

void reseal(std::vector<uint8_t>& b) {
  FileHeader h;
  if (b.size() < sizeof h) return;
  memcpy(&h, b.data(), sizeof h);
  const uint64_t entsize = h.section_entry_size, count = h.section_count;
  if (entsize >= sizeof(SectionEntry) && count <= 64 && inside(h.section_table_offset, count * entsize, b.size())) {
    uint8_t* table = b.data() + h.section_table_offset;
    for (uint64_t i = 0; i < count; i++) {
      SectionEntry e;
      memcpy(&e, table + i * entsize, sizeof e);
      if (!inside(e.offset, e.length, b.size()) || (e.flags & kSectionNoChecksum)) continue;
      e.checksum = checksum(b.data() + e.offset, e.length);
      memcpy(table + i * entsize, &e, sizeof e);
    }
    h.section_table_checksum = checksum(table, count * entsize);
    memcpy(b.data() + offsetof(FileHeader, section_table_checksum), &h.section_table_checksum, 8);
  }
  if (h.header_size >= offsetof(FileHeader, header_checksum) + 8 && h.header_size <= b.size()) {
    const uint64_t sum = checksum_with_zeroed_u64(b.data(), h.header_size, offsetof(FileHeader, header_checksum));
    memcpy(b.data() + offsetof(FileHeader, header_checksum), &sum, 8);
  }
}

void check_path(const char* path, uint32_t length) {
  require(path != nullptr);
  for (uint32_t i = 0; i < length; i++) (void)*(volatile const char*)(path + i);
  require(path[length] == 0);
}

void walk(const SnapshotReader& r) {
  const uint8_t* file_begin = r.base();
  const uint8_t* file_end = r.base() + r.file_size();
  const uint64_t ps = r.page_size();
  uint64_t pages = 0;
  for (uint32_t m = 0; m < r.module_count(); m++) {
    const ModuleView v = r.module(m);
    check_path(v.path, v.path_length);
    require(v.id_length <= kMaxIdLength);
  }
  for (uint32_t a = 0; a < r.ancestor_count(); a++) {
    const AncestorView v = r.ancestor(a);
    check_path(v.path, v.record->path_length);
  }
  for (uint64_t i = 0; i < r.region_count(); i++) {
    const RegionRecord& rec = r.region(i);
    ModuleView v;
    if (r.region_module(i, &v)) check_path(v.path, v.path_length);
    // Run by run: a region may declare billions of pages and store none (that is the point of the
    // format); every stored page is looked up as a caller would, and the pages around each run
    // are absent.
    uint64_t counts[5] = {};
    for (uint64_t k = 0; k < rec.run_count; k++) {
      const RunRecord& run = r.run(i, k);
      if (run.first_page > 0) require(k > 0 || r.page(i, run.first_page - 1).kind == PageKind::kAbsent);
      for (uint64_t p = run.first_page; p < run.first_page + run.pages; p++) {
        const PageRef ref = r.page(i, p);
        require(ref.kind != PageKind::kAbsent && uint8_t(ref.kind) <= uint8_t(PageKind::kParent));
        counts[uint8_t(ref.kind)]++;
        if (ref.kind == PageKind::kData || ref.kind == PageKind::kDuplicate) {
          require(ref.data >= file_begin && ref.data <= file_end && uint64_t(file_end - ref.data) >= ps);
          require(ref.offset >= r.data_offset() && ref.offset - r.data_offset() < r.data_length());
          // Each block once: duplicates of it are compared by verify_all below.
          if (ref.kind == PageKind::kData) (void)r.verify_page(i, p);
        } else if (ref.kind == PageKind::kParent) {
          require(ref.data == nullptr && ref.depth >= 1 && ref.depth <= r.ancestor_count());
          require(!r.verify_page(i, p));  // its ancestor is not open: never taken as good
        } else {
          require(ref.data == nullptr);
          require(r.verify_page(i, p));
        }
      }
      const uint64_t after = run.first_page + run.pages;
      if (after < rec.page_count) {
        const bool next_adjacent = k + 1 < rec.run_count && r.run(i, k + 1).first_page == after;
        require(next_adjacent || r.page(i, after).kind == PageKind::kAbsent);
        require(r.next_stored(i, after) == (k + 1 < rec.run_count ? r.run(i, k + 1).first_page : rec.page_count));
      }
    }
    require(counts[0] == 0 && counts[1] == rec.zero_pages && counts[2] == rec.data_pages &&
            counts[3] == rec.duplicate_pages && counts[4] == rec.parent_pages);
    require(rec.absent_pages + rec.entry_count == rec.page_count);
    pages += rec.page_count;
  }
  const VerifyReport rep = r.verify_all();
  require(rep.regions == r.region_count() && rep.pages == pages);
  require(rep.blocks_checked == r.data_length() / ps);
}

void restore_setup(const SnapshotReader& r) {
  SnapshotPageSource source;
  // Its bitmaps have a bit per page of every region, stored or not: a file may declare more pages
  // than there is address space for them, and that is refused with ENOMEM, nothing else.
  const int got = source.init(&r, /*verify_pages=*/true);
  require(got == 0 || got == -ENOMEM);
  RegionMatcher matcher;
  if (matcher.init(&r, RegionMatcher::mode_for(r)) != 0) return;
  // Every region asks for itself, as the same mapping in a new run would.
  for (uint64_t i = 0; i < r.region_count(); i++) {
    const RegionRecord& rec = r.region(i);
    MappingQuery q;
    q.start = rec.start;
    q.length = matcher.mode() == RegionMatcher::Mode::kByAddress ? rec.length : rec.alloc_length;
    q.module = rec.site_module;
    q.offset = rec.site_offset;
    q.ordinal = rec.ordinal;
    const int64_t found = matcher.match(q);
    require(found < int64_t(r.region_count()));
  }
  require(matcher.matched_count() <= r.region_count());
}

// A process image's sections (uffdlazy checkpoint), as resume, inspect and verify read them: every
// record and string the checks let through lies inside its section and ends in NUL.
void process_image(const SnapshotReader& r) {
  if (!ProcessImage::is_process_image(r)) return;
  ProcessImage img;
  if (!img.open(r).ok()) return;
  const ProcessRecord& p = img.process();
  for (StringRef s : {p.cwd, p.kernel_release, p.exe}) check_path(img.process_string(s), s.length);
  for (uint32_t i = 0; i < img.thread_count(); i++) require(img.thread(i).role <= uint32_t(ThreadRole::kCapture));
  for (uint32_t i = 0; i < img.mapping_count(); i++) {
    const MappingRecord& m = img.mapping(i);
    require(m.start < m.end);
    check_path(img.mapping_string(m.path), m.path.length);
    require(img.mapping_at(m.start) == long(i));
  }
  for (uint32_t i = 0; i < img.descriptor_count(); i++) {
    const DescriptorRecord& d = img.descriptor(i);
    check_path(img.descriptor_string(d.path), d.path.length);
  }
  for (uint64_t i = 0; i < r.region_count(); i++) {
    if (img.region_lazy(i)) require(img.mapping_at(r.region(i).start) >= 0);
  }
}

void read_snapshot(const uint8_t* data, size_t size) {
  const int fd = input_fd(data, size);
  SnapshotReader r;
  // As inspect and verify open it: any valid page size, so the fuzzer reaches past that check.
  ReadStatus s = r.open_fd(fd, /*native_page_size=*/false);
  uffdlazy::LineWriter text;
  describe(s, text);
  if (!s.ok()) {
    require(!r.is_open() && text.size() > 0);
    return;
  }
  check_path(r.exe_path(), r.header().exe_path_length);
  static ModuleIdentity identity;  // 4 KiB: not on the stack of every run
  r.executable_identity(&identity);
  s = r.check_identity(identity);
  // The recorded executable is itself, unless its path is longer than an identity holds.
  if (r.header().exe_path_length <= kMaxPathLength) require(s.ok());
  identity.set_path("/nonexistent/other", 18);
  identity.id[0] ^= 1;
  s = r.check_identity(identity);
  text.clear();
  describe(s, text);
  walk(r);
  restore_setup(r);
  process_image(r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uffdlazy::fuzz::InputBudget budget;
  read_snapshot(data, size);
  std::vector<uint8_t> resealed(data, data + size);
  reseal(resealed);
  if (size && memcmp(resealed.data(), data, size) != 0) read_snapshot(resealed.data(), size);
  return 0;
}
