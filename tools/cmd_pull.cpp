// `uffdlazy pull URL FILE`: downloads an object to a local file, resumably: the bytes go to
// FILE.part (with FILE.part.etag naming the object's ETag and size), and a pull that was
// interrupted continues where it stopped if the object has not changed since. The file gets its
// final name only once it is complete (and, for a snapshot, its index digest checks out: the
// header's against its metadata, and the URL's pinned one).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/option_parser.h"
#include "tools/remote/http_client.h"
#include "tools/remote/location.h"
#include "tools/remote/progress.h"
#include "tools/remote/remote_snapshot.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--digest",
     .value = "HEX",
     .help = "the index digest the snapshot must have (64 hex digits, as push printed it); URL#sha256=HEX "
             "is the same"},
};

constexpr uint64_t kChunk = 8ull << 20;

int pull(int argc, char** argv) {
  ParsedArgs given;
  if (const int rc = parse_args(pull_verb, argc, argv, &given); rc != kParsed) return rc;
  std::string pinned;
  if (const std::string* d = given.value("--digest"); d && !remote::normalize_digest(*d, &pinned))
    return usage_error(pull_verb, "--digest takes 64 hex digits (the index digest push printed)");
  const std::vector<std::string>& args = given.operands;
  remote::Location loc;
  std::string err;
  if (!remote::parse_location(args[0], &loc, &err) || !loc.remote()) {
    std::fprintf(stderr, "uffdlazy pull: %s: %s\n", args[0].c_str(),
                 err.empty() ? "not a remote location (s3://BUCKET/KEY or http(s)://...)" : err.c_str());
    return 2;
  }
  if (!pinned.empty() && !loc.digest.empty() && pinned != loc.digest) {
    std::fprintf(stderr, "uffdlazy pull: --digest and the URL's #sha256= differ\n");
    return 2;
  }
  if (pinned.empty()) pinned = loc.digest;
  const std::string file = args[1], part = file + ".part", meta = part + ".etag";
  remote::ObjectClient client;
  if (!client.init(loc, &err)) {
    std::fprintf(stderr, "uffdlazy pull: %s: %s\n", loc.text.c_str(), err.c_str());
    return 2;
  }
  remote::Response s = client.stat();
  if (!s.ok) {
    std::fprintf(stderr, "uffdlazy pull: %s: %s\n", loc.text.c_str(), s.error.c_str());
    return s.http == 403 || s.http == 404 ? 2 : 1;
  }
  const std::string identity = s.etag + " " + std::to_string(s.total) + " " + loc.text;
  // Resume only what came from this very object (same ETag, size and location).
  uint64_t have = 0;
  {
    std::ifstream m(meta);
    std::string line;
    struct stat st{};
    if (std::getline(m, line) && line == identity && stat(part.c_str(), &st) == 0 && uint64_t(st.st_size) <= s.total) {
      have = uint64_t(st.st_size);
    }
  }
  const int fd = open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ftruncate(fd, off_t(have)) != 0) {
    std::fprintf(stderr, "uffdlazy pull: %s: %s\n", part.c_str(), std::strerror(errno));
    return 1;
  }
  {
    std::ofstream m(meta, std::ios::trunc);
    m << identity << "\n";
  }
  if (have) std::fprintf(stderr, "uffdlazy pull: %s: continuing at %llu of %llu bytes\n", file.c_str(),
                         (unsigned long long)have, (unsigned long long)s.total);
  remote::Progress progress("pull " + loc.text, s.total);
  std::vector<uint8_t> buf(kChunk);
  for (uint64_t at = have; at < s.total;) {
    const uint64_t len = std::min(kChunk, s.total - at);
    remote::Response r = client.get(at, len, buf.data(), s.etag);
    if (!r.ok) {
      progress.done();
      close(fd);
      std::fprintf(stderr, "uffdlazy pull: %s: %s; %llu of %llu bytes are in %s, run the pull again to continue\n",
                   loc.text.c_str(), r.error.c_str(), (unsigned long long)at, (unsigned long long)s.total, part.c_str());
      return 1;
    }
    for (uint64_t done = 0; done < len;) {
      const ssize_t w = pwrite(fd, buf.data() + done, len - done, off_t(at + done));
      if (w <= 0) {
        std::fprintf(stderr, "uffdlazy pull: %s: %s\n", part.c_str(), std::strerror(errno));
        close(fd);
        return 1;
      }
      done += uint64_t(w);
    }
    at += len;
    progress.update(at);
  }
  progress.done();
  if (fsync(fd) != 0 || close(fd) != 0) {
    std::fprintf(stderr, "uffdlazy pull: %s: %s\n", part.c_str(), std::strerror(errno));
    return 1;
  }
  const remote::SnapshotDigest d = remote::file_digest(part);
  if (d.snapshot && !d.error.empty()) {
    std::fprintf(stderr, "uffdlazy pull: %s: %s (kept as %s)\n", loc.text.c_str(), d.error.c_str(), part.c_str());
    return 1;
  }
  if (!pinned.empty() && d.digest != pinned) {
    std::fprintf(stderr, "uffdlazy pull: %s: index digest mismatch: %s, not the pinned %s (kept as %s)\n",
                 loc.text.c_str(), d.snapshot ? d.digest.c_str() : "none (not a snapshot)", pinned.c_str(), part.c_str());
    return 1;
  }
  if (rename(part.c_str(), file.c_str()) != 0) {
    std::fprintf(stderr, "uffdlazy pull: %s: %s\n", file.c_str(), std::strerror(errno));
    return 1;
  }
  unlink(meta.c_str());
  std::printf("%s -> %s: %llu bytes%s%s\n", loc.text.c_str(), file.c_str(), (unsigned long long)s.total,
              d.snapshot ? ", index digest sha256=" : "", d.snapshot ? d.digest.c_str() : "");
  return 0;
}

}  // namespace

const VerbSpec pull_verb = {
    .name = "pull",
    .summary = "download a snapshot or image from S3 or an HTTP(S) URL",
    .synopsis = "[--digest HEX] URL FILE",
    .description =
        "Downloads URL (s3://BUCKET/KEY or http(s)://...) to FILE. The bytes go to FILE.part; a pull that "
        "was interrupted continues where it stopped when run again, if the object is unchanged (same ETag, "
        "size and location). FILE appears only once complete; a snapshot is checked first: its index "
        "digest against its metadata, and against the pinned one (URL#sha256=HEX or --digest HEX).",
    .options = kOptions,
    .operand = "URL FILE",
    .min_operands = 2,
    .max_operands = 2,
    .operand_complete = Complete::kFile,
    .exit_status = "0    downloaded (and, for a snapshot, checked)\n"
                   "1    the transfer failed, or the snapshot does not check out (FILE.part is kept)\n"
                   "2    a usage error, a bad URL or no credentials",
    .example = "uffdlazy pull s3://bucket/app.snap app.snap\n"
               "uffdlazy pull 's3://bucket/app.snap#sha256=HEX' app.snap",
    .run = pull,
};

}  // namespace uffdlazy::cli
