// `uffdlazy compact IMAGE -o OUT`: an incremental image and the images it builds on, written as
// one image that stands alone (every page its own): the same regions, pages, process state and
// capture time, so it resumes exactly as the chain does, without the chain.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/snapshot/checksum.h"
#include "core/snapshot/process_format.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/snapshot/snapshot_writer.h"
#include "tools/commands.h"
#include "tools/option_parser.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--output",
     .alias = "-o",
     .value = "OUT",
     .help = "where to write the image (mode 0600, under a temporary name renamed once complete)",
     .complete = Complete::kFile,
     .required = true},
};

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
    if (p.kind == snap::PageKind::kPacked) {  // unpacked here, checked, and packed again by the writer
      unpacked_.resize(r_.page_size());
      if (!r_.unpack(r_.entry(region_, i), unpacked_.data()) ||
          snap::checksum(unpacked_.data(), r_.page_size()) != p.checksum) {
        bad_page = i;
        fail(EIO);
        return nullptr;
      }
      return unpacked_.data();
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
  std::vector<uint8_t> unpacked_;
};

snap::ModuleIdentity identity(const snap::ModuleView& v) {
  snap::ModuleIdentity m;
  m.set_path(v.path, v.path_length);
  m.id_kind = v.id_kind;
  m.id_length = v.id_length;
  std::memcpy(m.id, v.id, v.id_length);
  return m;
}

int compact(int argc, char** argv) {
  ParsedArgs given;
  if (const int rc = parse_args(compact_verb, argc, argv, &given); rc != kParsed) return rc;
  const char* in = given.operands[0].c_str();
  const std::string out = *given.value("--output");
  if (out.empty()) return usage_error(compact_verb, "--output needs a file name");
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
    info.pack = rec.packed_pages != 0;  // an eager region of a process image: packed as it was
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
              out.c_str(), s.regions, s.data_pages + s.duplicate_pages + s.zero_pages + s.packed_pages, [&] {
                uint64_t n = 0;
                for (uint64_t i = 0; i < r.region_count(); i++) n += r.region(i).parent_pages;
                return n;
              }(),
              r.ancestor_count(), r.ancestor_count() == 1 ? "" : "s", s.file_size);
  return 0;
}

}  // namespace

const VerbSpec compact_verb = {
    .name = "compact",
    .summary = "write an incremental image and its parents as one image",
    .synopsis = "-o OUT IMAGE",
    .description =
        "Writes OUT: IMAGE with every page it leaves in the images it builds on (an incremental image: "
        "checkpoint --incremental) stored in it, so OUT resumes, inspects and verifies without them. Every "
        "page is checked against its checksum on the way. Anything else is copied as it is (a full image or "
        "a snapshot comes out equivalent, page for page).",
    .options = kOptions,
    .operand = "IMAGE",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kFile,
    .exit_status = "0    written\n"
                   "1    a page failed its checksum (nothing written)\n"
                   "2    a usage error, or IMAGE (or an image it builds on) cannot be read",
    .example = "uffdlazy checkpoint --incremental -o app.img -- ./app\n"
               "uffdlazy compact -o app-full.img app.img.2",
    .run = compact,
};

}  // namespace uffdlazy::cli
