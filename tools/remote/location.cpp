#include "tools/remote/location.h"

#include <cctype>

namespace uffdlazy::remote {

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

bool is_remote(const std::string& text) {
  return starts_with(text, "s3://") || starts_with(text, "http://") || starts_with(text, "https://");
}

bool normalize_digest(const std::string& hex, std::string* out) {
  if (hex.size() != 64) return false;
  std::string d;
  for (char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    d += char(std::tolower(static_cast<unsigned char>(c)));
  }
  *out = d;
  return true;
}

bool parse_location(const std::string& text, Location* out, std::string* err) {
  *out = Location{};
  if (!is_remote(text)) {
    out->kind = Location::kFile;
    out->text = out->path = text;
    return true;
  }
  std::string body = text;
  const size_t hash = text.find('#');
  if (hash != std::string::npos) {
    body = text.substr(0, hash);
    const std::string fragment = text.substr(hash + 1);
    if (!starts_with(fragment, "sha256=") || !normalize_digest(fragment.substr(7), &out->digest)) {
      *err = "the URL's fragment must be #sha256= and the snapshot's index digest (64 hex digits), not #" + fragment;
      return false;
    }
  }
  out->text = body;
  if (starts_with(body, "s3://")) {
    const std::string rest = body.substr(5);
    const size_t slash = rest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size()) {
      *err = "an S3 location needs a bucket and a key, as s3://BUCKET/KEY";
      return false;
    }
    out->kind = Location::kS3;
    out->bucket = rest.substr(0, slash);
    out->key = rest.substr(slash + 1);
    for (char c : out->bucket) {
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
            c == '.' || c == '_')) {
        *err = "'" + out->bucket + "' is not a valid bucket name (lower-case letters, digits, '-', '.')";
        return false;
      }
    }
    return true;
  }
  const size_t host_at = body.find("://") + 3;
  if (host_at >= body.size() || body[host_at] == '/') {
    *err = "an HTTP location needs a host, as http://HOST/PATH";
    return false;
  }
  out->kind = Location::kHttp;
  out->url = body;
  return true;
}

}  // namespace uffdlazy::remote
