// `uffdlazy inspect FILE`: what a snapshot holds, without checking page data (that is `verify`).
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/snapshot/process_image.h"
#include "tools/commands.h"
#include "tools/inspect_process.h"
#include "tools/option_parser.h"
#include "tools/remote/location.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--json", .help = "print the same as one JSON object"},
    {.name = "--digest",
     .value = "HEX",
     .help = "the index digest the snapshot must have (64 hex digits, as push printed it); URL#sha256=HEX "
             "is the same"},
};

struct Totals {
  uint64_t pages = 0, data = 0, zero = 0, dup = 0, parent = 0, absent = 0, logical = 0, runs = 0, packed = 0;
};

Totals totals_of(const snap::SnapshotReader& r) {
  Totals t;
  for (uint64_t i = 0; i < r.region_count(); i++) {
    const snap::RegionRecord& rec = r.region(i);
    t.pages += rec.page_count;
    t.data += rec.data_pages;
    t.zero += rec.zero_pages;
    t.dup += rec.duplicate_pages;
    t.parent += rec.parent_pages;
    t.packed += rec.packed_pages;
    t.absent += rec.absent_pages;
    t.runs += rec.run_count;
    t.logical += rec.length;
  }
  return t;
}

// Whether the ancestors of an incremental image can be used: "ok", or why not.
std::string ancestors_status(snap::SnapshotReader& r, const char* path) {
  if (!r.ancestor_count()) return "ok";
  const snap::ReadStatus s = r.open_ancestors(path);
  return s.ok() ? "ok" : read_status_text(s);
}

void print_text(const char* path, const snap::SnapshotReader& r, const std::string& chain) {
  const snap::FileHeader& h = r.header();
  const snap::ModuleView exe = r.executable();
  const uint64_t ps = r.page_size();
  std::printf("snapshot    %s\n", path);
  std::printf("format      %u.%u, %" PRIu64 "-byte pages, flags %s\n", h.version_major, h.version_minor, ps,
              flags_text(h.flags).c_str());
  std::printf("written by  %s\n", *r.writer_version() ? r.writer_version() : "unknown");
  std::printf("captured    %s\n", utc_time_text(h.created_ns).c_str());
  const std::string digest = recorded_digest_text(r);
  std::printf("digest      %s\n", digest.empty() ? "none (format 1.0)" : ("sha256=" + digest).c_str());
  std::printf("executable  %s\n", exe.path);
  std::printf("build-id    %s\n", id_text(exe.id_kind, exe.id, exe.id_length).c_str());
  std::printf("regions     %" PRIu64 "\n\n", r.region_count());
  for (uint32_t i = 0; i < r.ancestor_count(); i++) {
    const snap::AncestorView a = r.ancestor(i);
    std::printf("%-11s %s (written %s)\n", i == 0 ? "parent" : "ancestor", a.path,
                utc_time_text(a.record->created_ns).c_str());
  }
  if (r.ancestor_count()) std::printf("chain       %s\n", chain.c_str());
  std::printf("%5s  %-18s %12s %-4s %-6s %-32s %7s %6s %8s %8s %8s %8s %8s %12s\n", "#", "start", "length", "prot",
              "flags", "site", "ordinal", "runs", "data", "zero", "dup", "parent", "absent", "stored");
  for (uint64_t i = 0; i < r.region_count(); i++) {
    const snap::RegionRecord& rec = r.region(i);
    std::printf("%5" PRIu64 "  0x%016" PRIx64 " %12" PRIu64 " %-4s 0x%-4x %-32s %7" PRIu64 " %6" PRIu64 " %8" PRIu64
                " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %12" PRIu64 "\n",
                i, rec.start, rec.length, prot_text(rec.prot).c_str(), rec.map_flags, site_text(r, i).c_str(),
                rec.ordinal, rec.run_count, rec.data_pages, rec.zero_pages, rec.duplicate_pages, rec.parent_pages,
                rec.absent_pages, rec.data_pages * ps);
  }
  const Totals t = totals_of(r);
  std::printf("\ntotals      file %" PRIu64 " bytes, logical %" PRIu64 " bytes in %" PRIu64 " pages\n", r.file_size(),
              t.logical, t.pages);
  std::printf("stored      %" PRIu64 " bytes in %" PRIu64 " data blocks, %" PRIu64 " runs\n", r.data_length(), t.data,
              t.runs);
  if (t.parent) std::printf("unchanged   %" PRIu64 " pages left in the parent images\n", t.parent);
  if (t.packed) {
    std::printf("packed      %" PRIu64 " mostly zero pages as their non-zero bytes: %" PRIu64 " bytes\n", t.packed,
                r.packed_length());
  }
  std::printf("saved       %" PRIu64 " bytes by dedup (%" PRIu64 " duplicate pages), %" PRIu64
              " bytes of zero pages (%" PRIu64 "), %" PRIu64 " absent pages\n",
              t.dup * ps, t.dup, t.zero * ps, t.zero, t.absent);
}

void print_json(const char* path, const snap::SnapshotReader& r, const snap::ProcessImage* process,
                const std::string& chain) {
  const snap::FileHeader& h = r.header();
  const snap::ModuleView exe = r.executable();
  const uint64_t ps = r.page_size();
  const Totals t = totals_of(r);
  std::printf("{\"file\":%s,\"version\":\"%u.%u\",\"page_size\":%" PRIu64 ",\"flags\":%" PRIu64
              ",\"flags_text\":\"%s\",\"created_ns\":%" PRIu64 ",\"created\":\"%s\",",
              json_string(path, std::strlen(path)).c_str(), h.version_major, h.version_minor, ps, h.flags,
              flags_text(h.flags).c_str(), h.created_ns, utc_time_text(h.created_ns).c_str());
  const char* writer = r.writer_version();
  std::printf("\"writer_version\":%s,", *writer ? json_string(writer, std::strlen(writer)).c_str() : "null");
  const std::string digest = recorded_digest_text(r);
  std::printf("\"index_digest\":%s,", digest.empty() ? "null" : ("\"" + digest + "\"").c_str());
  std::printf("\"executable\":{\"path\":%s,\"id_kind\":\"%s\",\"id\":\"%s\"},",
              json_string(exe.path, exe.path_length).c_str(), id_kind_name(exe.id_kind),
              hex_bytes(exe.id, exe.id_length).c_str());
  std::printf("\"ancestors\":[");
  for (uint32_t i = 0; i < r.ancestor_count(); i++) {
    const snap::AncestorView a = r.ancestor(i);
    std::printf("%s{\"depth\":%u,\"path\":%s,\"created_ns\":%" PRIu64 ",\"file_size\":%" PRIu64 "}", i ? "," : "",
                i + 1, json_string(a.path, std::strlen(a.path)).c_str(), a.record->created_ns, a.record->file_size);
  }
  std::printf("],\"chain\":%s,", json_string(chain.data(), chain.size()).c_str());
  std::printf("\"regions\":[");
  for (uint64_t i = 0; i < r.region_count(); i++) {
    const snap::RegionRecord& rec = r.region(i);
    std::printf("%s{\"index\":%" PRIu64 ",\"start\":%" PRIu64 ",\"length\":%" PRIu64 ",\"prot\":%u,\"map_flags\":%u,",
                i ? "," : "", i, rec.start, rec.length, rec.prot, rec.map_flags);
    snap::ModuleView m;
    if (r.region_module(i, &m)) {
      std::printf("\"site\":{\"module\":%s,\"module_id_kind\":\"%s\",\"module_id\":\"%s\",\"offset\":%" PRIu64 "},",
                  json_string(m.path, m.path_length).c_str(), id_kind_name(m.id_kind),
                  hex_bytes(m.id, m.id_length).c_str(), rec.site_offset);
    } else {
      std::printf("\"site\":null,");
    }
    std::printf("\"ordinal\":%" PRIu64 ",\"alloc_length\":%" PRIu64 ",\"pages\":%" PRIu64 ",\"runs\":%" PRIu64
                ",\"data\":%" PRIu64 ",\"zero\":%" PRIu64 ",\"duplicate\":%" PRIu64 ",\"parent\":%" PRIu64
                ",\"absent\":%" PRIu64 ",\"packed\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 "}",
                rec.ordinal, rec.alloc_length, rec.page_count, rec.run_count, rec.data_pages, rec.zero_pages,
                rec.duplicate_pages, rec.parent_pages, rec.absent_pages, rec.packed_pages, rec.data_pages * ps);
  }
  std::printf("],\"totals\":{\"file_size\":%" PRIu64 ",\"logical_bytes\":%" PRIu64 ",\"pages\":%" PRIu64
              ",\"stored_bytes\":%" PRIu64 ",\"data_pages\":%" PRIu64 ",\"zero_pages\":%" PRIu64
              ",\"duplicate_pages\":%" PRIu64 ",\"absent_pages\":%" PRIu64 ",\"parent_pages\":%" PRIu64
              ",\"runs\":%" PRIu64 ",\"dedup_saved_bytes\":%" PRIu64 ",\"packed_pages\":%" PRIu64
              ",\"packed_bytes\":%" PRIu64 "}",
              r.file_size(), t.logical, t.pages, r.data_length(), t.data, t.zero, t.dup, t.absent, t.parent, t.runs,
              t.dup * ps, t.packed, r.packed_length());
  if (process) {
    std::printf(",");
    print_process_json(r, *process);
  }
  std::printf("}\n");
}

int inspect(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(inspect_verb, argc, argv, &args); rc != kParsed) return rc;
  const bool json = args.has("--json");
  const char* path = args.operands[0].c_str();
  std::string digest;
  if (const std::string* d = args.value("--digest"); d && !remote::normalize_digest(*d, &digest))
    return usage_error(inspect_verb, "--digest takes 64 hex digits (the index digest push printed)");
  snap::SnapshotReader reader;
  if (!open_snapshot(reader, path, /*whole=*/false, digest).ok()) return 2;
  snap::ProcessImage image;
  const bool process = snap::ProcessImage::is_process_image(reader);
  if (process) {
    snap::ReadStatus st = image.open(reader);
    if (!st.ok()) {
      std::fprintf(stderr, "uffdlazy: %s: %s\n", path, read_status_text(st).c_str());
      return 2;
    }
  }
  const std::string chain = ancestors_status(reader, path);
  if (json) {
    print_json(path, reader, process ? &image : nullptr, chain);
  } else {
    print_text(path, reader, chain);
    if (process) print_process_text(reader, image);
  }
  return 0;
}

}  // namespace

const VerbSpec inspect_verb = {
    .name = "inspect",
    .summary = "show what a snapshot or process image holds",
    .synopsis = "[--json] [--digest HEX] FILE|URL",
    .description =
        "Prints a snapshot's identity (executable, build-id, page size, format version, the uffdlazy "
        "release that wrote it (\"written by\"; JSON writer_version, null for a file that does not record "
        "it), capture time, index digest), one line per region (address, length, protection, allocation "
        "site, ordinal, runs, and how many pages are stored as data, zero, duplicate, parent or absent) and "
        "totals (and the pages stored packed, as their non-zero bytes: JSON packed_pages, packed_bytes); for an incremental image, the images it builds on and whether they can be used; for a "
        "process image (uffdlazy checkpoint), also the process, its threads, mappings and descriptors. Page data is not checked (that is "
        "uffdlazy verify). A URL (s3://BUCKET/KEY, http(s)://...) is read remotely: only its header and "
        "metadata are fetched, and its index digest is checked against them (URL#sha256=HEX or --digest HEX "
        "pins the digest it must have).",
    .options = kOptions,
    .operand = "FILE|URL",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kFile,
    .exit_status = "0    shown\n"
                   "2    a usage error, or a file that cannot be read as a snapshot",
    .example = "uffdlazy inspect app.snap\n"
               "uffdlazy inspect --json app.img\n"
               "uffdlazy inspect s3://bucket/app.snap",
    .run = inspect,
};

}  // namespace uffdlazy::cli
