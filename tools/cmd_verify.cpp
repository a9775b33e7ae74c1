// `uffdlazy verify FILE...`: checks every checksum of a snapshot, page data included.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/snapshot/process_image.h"
#include "tools/commands.h"
#include "tools/option_parser.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

int verify_one(const char* path) {
  snap::SnapshotReader reader;
  const snap::ReadStatus s = open_snapshot(reader, path);
  if (!s.ok()) return is_damage(s) ? 1 : 2;
  if (snap::ProcessImage::is_process_image(reader)) {
    snap::ProcessImage image;
    const snap::ReadStatus ps = image.open(reader);
    if (!ps.ok()) {
      std::printf("%s: damaged process image: %s\n", path, read_status_text(ps).c_str());
      return 1;
    }
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
  int worst = 0;
  for (const std::string& path : args.operands) {
    const int rc = verify_one(path.c_str());
    if (rc > worst) worst = rc;
  }
  return worst;
}

}  // namespace

const VerbSpec verify_verb = {
    .name = "verify",
    .summary = "check every checksum of snapshots and process images",
    .synopsis = "FILE...",
    .description =
        "Checks a snapshot's (or process image's) header, section table, region table and page index "
        "checksums and the XXH3 checksum of every stored page, and names the first bad thing it finds.",
    .options = {},
    .operand = "FILE",
    .min_operands = 1,
    .max_operands = VerbSpec::kAnyNumber,
    .operand_complete = Complete::kFile,
    .exit_status = "0    every file is intact\n"
                   "1    a file is damaged (a checksum mismatch, truncated or inconsistent)\n"
                   "2    a usage error, or a file that cannot be opened or is not a snapshot this build "
                   "reads",
    .example = "uffdlazy verify app.snap app.img",
    .run = verify,
};

}  // namespace uffdlazy::cli
