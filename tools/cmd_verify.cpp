// `uffdlazy verify FILE...`: checks every checksum of a snapshot, page data included.
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "core/snapshot/process_image.h"
#include "tools/commands.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

const char kUsage[] =
    "usage: uffdlazy verify FILE...\n"
    "\n"
    "Checks a snapshot's header, section table, region table and page index checksums and the\n"
    "XXH3 checksum of every stored page, and names the first bad thing it finds. An incremental\n"
    "image is verified with the images it builds on (the pages it left in them included).\n"
    "\n"
    "Exit status: 0 every file is intact; 1 a file is damaged (checksum mismatch, truncated or\n"
    "inconsistent); 2 usage error, or a file that cannot be opened or is not a snapshot this\n"
    "build reads, or an incremental image whose parent images are missing or were replaced.\n";

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

}  // namespace

int cmd_verify(int argc, char** argv) {
  int files = 0;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (argv[i][0] == '-' && argv[i][1]) {
      std::fprintf(stderr, "uffdlazy verify: unknown option '%s'\n%s", argv[i], kUsage);
      return 2;
    }
    files++;
  }
  if (!files) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  int worst = 0;
  for (int i = 1; i < argc; i++) {
    const int rc = verify_one(argv[i]);
    if (rc > worst) worst = rc;
  }
  return worst;
}

}  // namespace uffdlazy::cli
