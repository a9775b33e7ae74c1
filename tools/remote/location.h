// Where a snapshot, image or working set is: a local path, an s3://BUCKET/KEY object, or an
// http(s):// URL (a presigned URL, a CDN). A URL may end with #sha256=HEX, the index digest the
// snapshot must have (docs/remote.md, "Trust").
#pragma once

#include <string>

namespace uffdlazy::remote {

struct Location {
  enum Kind { kFile, kS3, kHttp };
  Kind kind = kFile;
  std::string text;    // as given, without the #sha256= fragment: what messages name
  std::string path;    // kFile
  std::string bucket;  // kS3
  std::string key;     // kS3, without the leading '/'
  std::string url;     // kHttp: the URL without the fragment
  std::string digest;  // 64 lower-case hex digits, or empty
  bool remote() const { return kind != kFile; }
};

// True when text names an s3:// or http(s):// location (anything else is a path).
bool is_remote(const std::string& text);

// Parses text. False with *err set ("s3:// needs a bucket and a key, as s3://BUCKET/KEY") when a
// URL is malformed; a path is always accepted.
bool parse_location(const std::string& text, Location* out, std::string* err);

// Lower-cases and checks a digest given as 64 hex digits. False if it is not one.
bool normalize_digest(const std::string& hex, std::string* out);

}  // namespace uffdlazy::remote
