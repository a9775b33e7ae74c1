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
#include "tools/option_parser.h"
#include "tools/remote/location.h"
#include "tools/remote/upload.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--part-size",
     .value = "SIZE",
     .help = "bytes per part of a multipart upload (at least 5M; K, M or G suffix)",
     .fallback = "16M"},
    {.name = "--parallel", .value = "N", .help = "parts in flight at once (1 to 16)", .fallback = "4"},
};

int push(int argc, char** argv) {
  ParsedArgs given;
  if (const int rc = parse_args(push_verb, argc, argv, &given); rc != kParsed) return rc;
  uint64_t part_size = 16ull << 20;
  int parallel = 4;
  for (const auto& [opt, value] : given.options) {
    const bool part = !std::strcmp(opt->name, "--part-size");
    uint64_t v = 0;
    if (!parse_size(value.c_str(), &v) || (part ? v < (5ull << 20) : (v < 1 || v > 16)))
      return usage_error(push_verb, std::string(opt->name) + " '" + value + "' is not valid (" +
                                        (part ? "at least 5M" : "1 to 16") + ")");
    if (part) part_size = v; else parallel = int(v);
  }
  const std::vector<std::string>& args = given.operands;
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

}  // namespace

const VerbSpec push_verb = {
    .name = "push",
    .summary = "upload a snapshot or image to S3 or an HTTP(S) URL",
    .synopsis = "[--part-size SIZE] [--parallel N] FILE URL",
    .description =
        "Uploads FILE (a snapshot, a process image, a working set: any file) to URL: s3://BUCKET/KEY (S3 "
        "or a store that speaks its API; the endpoint from AWS_ENDPOINT_URL, credentials from "
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws) or an http(s):// URL that accepts a PUT (a "
        "presigned URL). A file larger than two parts goes up as an S3 multipart upload, several parts at "
        "once, each retried on its own; the result is verified (the store's size and ETag against the "
        "file's).\n\n"
        "For a snapshot or process image it prints the index digest: URL#sha256=DIGEST pins it for "
        "inspect, verify and pull.",
    .options = kOptions,
    .operand = "FILE URL",
    .min_operands = 2,
    .max_operands = 2,
    .operand_complete = Complete::kFile,
    .exit_status = "0    uploaded and verified\n"
                   "1    the upload or its verification failed\n"
                   "2    a usage error, an unreadable file, a bad URL or no credentials",
    .example = "uffdlazy push app.snap s3://bucket/app.snap\n"
               "uffdlazy push --part-size 64M --parallel 8 big.img s3://bucket/big.img",
    .run = push,
};

}  // namespace uffdlazy::cli
