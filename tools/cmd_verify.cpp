// `uffdlazy verify FILE...`: checks every checksum of a snapshot, page data included.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/snapshot/process_image.h"
#include "core/snapshot/sha256.h"
#include "tools/commands.h"
#include "tools/option_parser.h"
#include "tools/remote/location.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

int verify_one(const char* path, const std::string& digest) {
  snap::SnapshotReader reader;
  const snap::ReadStatus s = open_snapshot(reader, path, /*whole=*/true, digest);
  if (!s.ok()) return is_damage(s) ? 1 : 2;
  // The index digest (a remote snapshot's was checked as it was fetched; this is the same check).
  const std::string recorded = recorded_digest_text(reader);
  uint8_t now[32];
  char now_hex[65] = "";
  if (reader.compute_index_digest(now)) snap::sha256_hex(now, now_hex);
  if (!recorded.empty() && recorded != now_hex) {
    std::printf("%s: index digest mismatch: the metadata hashes to %s but the header records %s\n", path, now_hex,
                recorded.c_str());
    return 1;
  }
  if (!digest.empty() && digest != now_hex) {
    std::printf("%s: index digest mismatch: %s, not the pinned %s\n", path, now_hex, digest.c_str());
    return 1;
  }
  if (snap::ProcessImage::is_process_image(reader)) {
    snap::ProcessImage image;
    const snap::ReadStatus ps = image.open(reader);
    if (!ps.ok()) {
      std::printf("%s: damaged process image: %s\n", path, read_status_text(ps).c_str());
      return 1;
    }
  }
  const snap::ReadStatus chain = reader.open_ancestors(path);
  if (!chain.ok()) {
    std::printf("%s: %s\n", path, read_status_text(chain).c_str());
    return 2;
  }
  const snap::VerifyReport rep = reader.verify_all();
  if (rep.ok()) {
    std::printf("%s: ok (%" PRIu64 " regions, %" PRIu64 " pages, %" PRIu64 " data blocks verified)\n", path,
                rep.regions, rep.pages, rep.blocks_checked);
    return 0;
  }
  std::printf("%s: region %" PRIu64 " page %" PRIu64 ": checksum mismatch\n", path, rep.first_bad_region,
              rep.first_bad_page);
  std::printf("%s: damaged (%" PRIu64 " bad pages of %" PRIu64 " checked, %" PRIu64 " regions)\n", path,
              rep.bad_pages, rep.pages_checked, rep.regions);
  return 1;
}

int verify(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(verify_verb, argc, argv, &args); rc != kParsed) return rc;
  std::string digest;
  if (const std::string* d = args.value("--digest"); d && !remote::normalize_digest(*d, &digest))
    return usage_error(verify_verb, "--digest takes 64 hex digits (the index digest push printed)");
  int worst = 0;
  for (const std::string& path : args.operands) {
    const int rc = verify_one(path.c_str(), digest);
    if (rc > worst) worst = rc;
  }
  return worst;
}

}  // namespace

const OptionSpec kOptions[] = {
    {.name = "--digest",
     .value = "HEX",
     .help = "the index digest every snapshot must have (64 hex digits, as push printed it); URL#sha256=HEX "
             "is the same"},
};

const VerbSpec verify_verb = {
    .name = "verify",
    .summary = "check every checksum of snapshots and process images",
    .synopsis = "[--digest HEX] FILE|URL...",
    .description =
        "Checks a snapshot's (or process image's) header, section table, region table and page index "
        "checksums, its index digest (format 1.1 and later) and the XXH3 checksum of every stored page, and "
        "names the first bad thing it finds. An incremental image is verified with the images it builds on "
        "(the pages it left in them included). A URL (s3://BUCKET/KEY, http(s)://...) is fetched whole first.",
    .options = kOptions,
    .operand = "FILE|URL",
    .min_operands = 1,
    .max_operands = VerbSpec::kAnyNumber,
    .operand_complete = Complete::kFile,
    .exit_status = "0    every file is intact\n"
                   "1    a file is damaged (a checksum mismatch, truncated or inconsistent)\n"
                   "2    a usage error, or a file that cannot be opened or is not a snapshot this build "
                   "reads, or an incremental image whose parent images are missing or were replaced",
    .example = "uffdlazy verify app.snap app.img\n"
               "uffdlazy verify s3://bucket/app.snap#sha256=HEX",
    .run = verify,
};

}  // namespace uffdlazy::cli
