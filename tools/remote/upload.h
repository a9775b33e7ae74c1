// Uploading a local file to a remote location, as `uffdlazy push` and `record -o URL` do: one PUT,
// or an S3 multipart upload (parts retried on their own, several in flight), then verified against
// the store's size and (when it is an MD5, as S3's and radosgw's are) its ETag.
#pragma once

#include <cstdint>
#include <string>

#include "tools/remote/location.h"

namespace uffdlazy::remote {

struct UploadOptions {
  uint64_t part_size = 16ull << 20;  // at least 5 MiB (S3's smallest part)
  int parallel = 4;                  // parts in flight
  bool progress = true;              // a progress line on a terminal
};

struct UploadResult {
  uint64_t bytes = 0;
  size_t parts = 0;
  std::string etag;      // the store's
  std::string checked;   // "size and ETag", or "size" when the ETag is not an MD5
  std::string digest;    // a snapshot's index digest (hex), or "" for another file
};

// Uploads `file` to `loc`. Returns 0, or the exit status for the caller with *err (one line,
// without the location): 2 for a bad file or settings (nothing was sent), 1 for a failed upload
// or verification.
int upload_file(const std::string& file, const Location& loc, const UploadOptions& options, UploadResult* out,
                std::string* err);

}  // namespace uffdlazy::remote
