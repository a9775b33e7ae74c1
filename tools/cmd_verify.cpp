// `uffdlazy verify FILE...`: checks every checksum of a snapshot, page data included.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/snapshot/process_image.h"
#include "tools/commands.h"
#include "core/snapshot/sha256.h"
#include "tools/remote/location.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

const char kUsage[] =
    "usage: uffdlazy verify [--digest HEX] FILE|URL...\n"
    "\n"
    "Checks a snapshot's header, section table, region table and page index checksums, its index\n"
    "digest (format 1.1 and later) and the XXH3 checksum of every stored page, and names the first\n"
    "bad thing it finds. An incremental image is verified with the images it builds on (the pages\n"
    "it left in them included). A URL (s3://BUCKET/KEY, http(s)://...) is fetched whole first;\n"
    "URL#sha256=HEX or --digest HEX is the index digest it must have.\n"
    "\n"
    "Exit status: 0 every file is intact; 1 a file is damaged (checksum mismatch, truncated or\n"
    "inconsistent); 2 usage error, or a file that cannot be opened or is not a snapshot this\n"
    "build reads, or an incremental image whose parent images are missing or were replaced.\n";

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

}  // namespace

int cmd_verify(int argc, char** argv) {
  int files = 0;
  std::string digest;
  std::vector<const char*> locations;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (!std::strcmp(argv[i], "--digest") && i + 1 < argc) {
      if (!remote::normalize_digest(argv[++i], &digest)) {
        std::fprintf(stderr, "uffdlazy verify: --digest takes 64 hex digits (the index digest push printed)\n");
        return 2;
      }
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1]) {
      std::fprintf(stderr, "uffdlazy verify: unknown option '%s'\n%s", argv[i], kUsage);
      return 2;
    }
    locations.push_back(argv[i]);
    files++;
  }
  if (!files) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  int worst = 0;
  for (const char* location : locations) {
    const int rc = verify_one(location, digest);
    if (rc > worst) worst = rc;
  }
  return worst;
}

}  // namespace uffdlazy::cli
