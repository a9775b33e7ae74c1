// `uffdlazy push FILE URL`: uploads a snapshot, a process image or a working set (any file) to an
// S3 object or an HTTP(S) URL that takes a PUT (a presigned URL). Large files go up in parts (S3
// multipart upload), several at once, each part retried on its own; the result is verified (the
// store's size and ETag against the file's). For a snapshot it prints the index digest, which a
// restore may pin (URL#sha256=HEX).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/env_config.h"
#include "tools/commands.h"
#include "tools/remote/location.h"
#include "tools/remote/upload.h"

namespace uffdlazy::cli {

namespace {

const char kUsage[] =
    "usage: uffdlazy push [--part-size SIZE] [--parallel N] FILE URL\n"
    "\n"
    "Uploads FILE to URL: s3://BUCKET/KEY (S3 or a store that speaks its API: AWS_ENDPOINT_URL,\n"
    "credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws) or an http(s):// URL\n"
    "that accepts a PUT (a presigned URL). Files larger than two parts go up as an S3 multipart\n"
    "upload, N parts at once (default 4), each retried on its own; the result is verified (size\n"
    "and ETag). For a snapshot or process image, prints its index digest: URL#sha256=DIGEST pins\n"
    "it for restore, resume, inspect and verify.\n"
    "\n"
    "  --part-size SIZE   bytes per part (default 16M, at least 5M)\n"
    "  --parallel N       parts in flight at once (1 to 16, default 4)\n"
    "\n"
    "Exit status: 0 uploaded and verified; 1 the upload or its verification failed; 2 usage\n"
    "error, unreadable file, bad URL or no credentials.\n";

}  // namespace

int cmd_push(int argc, char** argv) {
  uint64_t part_size = 16ull << 20;
  int parallel = 4;
  std::vector<std::string> args;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if ((a == "--part-size" || a == "--parallel") && i + 1 < argc) {
      uint64_t v = 0;
      if (!parse_size(argv[++i], &v) || (a == "--part-size" ? v < (5ull << 20) : (v < 1 || v > 16))) {
        std::fprintf(stderr, "uffdlazy push: %s '%s' is not valid (see --help)\n", a.c_str(), argv[i]);
        return 2;
      }
      if (a == "--part-size") part_size = v; else parallel = int(v);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "uffdlazy push: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      args.push_back(a);
    }
  }
  if (args.size() != 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string& file = args[0];
  remote::Location loc;
  std::string err;
  if (!remote::parse_location(args[1], &loc, &err) || !loc.remote()) {
    std::fprintf(stderr, "uffdlazy push: %s: %s\n", args[1].c_str(),
                 err.empty() ? "not a remote location (s3://BUCKET/KEY or http(s)://...)" : err.c_str());
    return 2;
  }
  remote::UploadOptions options;
  options.part_size = part_size;
  options.parallel = parallel;
  remote::UploadResult up;
  const int rc = remote::upload_file(file, loc, options, &up, &err);
  if (rc) {
    std::fprintf(stderr, "uffdlazy push: %s: %s\n", loc.text.c_str(), err.c_str());
    return rc;
  }
  std::printf("%s -> %s: %llu bytes in %zu part%s, verified (%s), ETag %s\n", file.c_str(), loc.text.c_str(),
              (unsigned long long)up.bytes, up.parts, up.parts == 1 ? "" : "s", up.checked.c_str(), up.etag.c_str());
  if (!up.digest.empty()) {
    std::printf("index digest sha256=%s\n%s#sha256=%s\n", up.digest.c_str(), loc.text.c_str(), up.digest.c_str());
  }
  return 0;
}

}  // namespace uffdlazy::cli
