// `uffdlazy compact IMAGE -o OUT`: an incremental image and the images it builds on, written as
// one image that stands alone (every page its own): the same regions, pages, process state and
// capture time, so it resumes exactly as the chain does, without the chain.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/snapshot/process_format.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"
#include "tools/commands.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

const char kUsage[] =
    "usage: uffdlazy compact IMAGE -o OUT\n"
    "\n"
    "Writes OUT: IMAGE with every page it leaves in the images it builds on (an incremental\n"
    "image: `checkpoint --incremental`) stored in it, so OUT resumes, inspects and verifies\n"
    "without them. Every page is checked against its checksum on the way. Anything else is\n"
    "copied as it is (a full image or a snapshot comes out equivalent, page for page).\n"
    "\n"
    "options:\n"
    "  -o, --output OUT   where to write (mode 0600, a temporary name renamed once complete)\n"
    "\n"
    "Exit status: 0 written; 1 a page failed its checksum (nothing written); 2 usage error, or\n"
    "IMAGE (or an image it builds on) cannot be read.\n";

// The stored pages of one region, from whichever image of the chain holds them.
class ChainPages final : public snap::PageProvider {
 public:
  ChainPages(const snap::SnapshotReader& r, uint64_t region) : r_(r), region_(region) {}
  const void* page(uint64_t i) override {
    const snap::PageRef p = r_.page(region_, i);
    if (p.kind == snap::PageKind::kAbsent) return nullptr;
    if (p.kind == snap::PageKind::kZero) {
      zeros_.resize(r_.page_size());
      return zeros_.data();
    }
    if (!r_.verify_page(region_, i)) {
      bad_page = i;
      fail(EIO);
      return nullptr;
    }
    return p.data;
  }
  uint64_t next(uint64_t from, uint64_t end) override {
    const uint64_t at = r_.next_stored(region_, from);
    return at < end ? at : end;
  }
  uint64_t bad_page = ~uint64_t(0);

 private:
  const snap::SnapshotReader& r_;
  uint64_t region_;
  std::vector<uint8_t> zeros_;
};

snap::ModuleIdentity identity(const snap::ModuleView& v) {
  snap::ModuleIdentity m;
  m.set_path(v.path, v.path_length);
  m.id_kind = v.id_kind;
  m.id_length = v.id_length;
  std::memcpy(m.id, v.id, v.id_length);
  return m;
}

}  // namespace

int cmd_compact(int argc, char** argv) {
  const char* in = nullptr;
  std::string out;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if ((a == "-o" || a == "--output") && i + 1 < argc) {
      out = argv[++i];
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "uffdlazy compact: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    } else if (!in) {
      in = argv[i];
    } else {
      std::fprintf(stderr, "uffdlazy compact: one IMAGE at a time\n%s", kUsage);
      return 2;
    }
  }
  if (!in || out.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  snap::SnapshotReader r;
  if (!open_snapshot(r, in).ok()) return 2;
  const snap::ReadStatus chain = r.open_ancestors(in);
  if (!chain.ok()) {
    std::fprintf(stderr, "uffdlazy: %s: %s\n", in, read_status_text(chain).c_str());
    return 2;
  }
  snap::ModuleIdentity exe = identity(r.executable());
  std::vector<snap::ModuleIdentity> modules;
  for (uint32_t i = 0; i < r.module_count(); i++) modules.push_back(identity(r.module(i)));
  snap::WriterOptions options;
  options.page_size = r.page_size();
  options.created_ns = r.header().created_ns;
  options.file_mode = 0600;
  snap::SnapshotWriter w;
  snap::WriteStatus st = w.open(out.c_str(), options);
  if (st.ok()) st = w.begin(exe, r.header().flags);
  for (uint64_t i = 0; i < r.region_count() && st.ok(); i++) {
    const snap::RegionRecord& rec = r.region(i);
    snap::RegionInfo info;
    info.start = rec.start;
    info.length = rec.length;
    info.prot = rec.prot;
    info.map_flags = rec.map_flags;
    info.site.module = rec.site_module == snap::kNoModule ? nullptr : &modules[rec.site_module];
    info.site.offset = rec.site_offset;
    info.site.ordinal = rec.ordinal;
    info.site.alloc_length = rec.alloc_length;
    ChainPages pages(r, i);
    st = w.add_region(info, pages);
    if (!st.ok() && pages.bad_page != ~uint64_t(0)) {
      std::fprintf(stderr, "uffdlazy: %s: region %" PRIu64 " page %" PRIu64 ": checksum mismatch; nothing written\n", in,
                   i, pages.bad_page);
      return 1;
    }
  }
  for (uint32_t t = uint32_t(snap::ProcessSection::kProcess); t <= uint32_t(snap::ProcessSection::kDescriptors) && st.ok(); t++) {
    const snap::SectionView v = r.process_section(t);
    if (v.data) st = w.add_section(t, snap::kSectionRequired, v.data, v.length);
  }
  if (st.ok()) st = w.commit();
  if (!st.ok()) {
    LineWriter why;
    snap::describe(st, why);
    std::fprintf(stderr, "uffdlazy: compact %s: %.*s\n", out.c_str(), int(why.size()), why.data());
    return 2;
  }
  const snap::WriterStats& s = w.stats();
  std::printf("%s: %" PRIu64 " regions, %" PRIu64 " pages stored (%" PRIu64 " taken from %u image%s it built on), %" PRIu64
              " bytes\n",
              out.c_str(), s.regions, s.data_pages + s.duplicate_pages + s.zero_pages, [&] {
                uint64_t n = 0;
                for (uint64_t i = 0; i < r.region_count(); i++) n += r.region(i).parent_pages;
                return n;
              }(),
              r.ancestor_count(), r.ancestor_count() == 1 ? "" : "s", s.file_size);
  return 0;
}

}  // namespace uffdlazy::cli
