// S3 settings, the standard ways users already have them: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (an
// S3-compatible store), the shared credentials and config files (~/.aws/credentials, ~/.aws/config,
// or AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE) and AWS_PROFILE. The environment wins over the
// files, as in the AWS CLI and SDKs.
#pragma once

#include <string>

namespace uffdlazy::remote {

struct S3Config {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // sent as x-amz-security-token when set
  std::string region;         // default us-east-1
  std::string endpoint;       // scheme://host[:port], no trailing '/'; empty: AWS itself
  bool path_style = false;    // BUCKET in the path (every custom endpoint) or in the host name (AWS)
  std::string profile;        // the profile the files were read for
  std::string credentials_from;  // "environment", the file's path, or "" when there are none
};

// Reads the settings. False with *err when there are no credentials at all, or a setting is bad.
bool load_s3_config(S3Config* out, std::string* err);

// The URL of an object (or of the bucket when key is empty), the key URI-encoded segment by
// segment as SigV4 expects. `query` (without '?') is appended as given: it must already be in
// SigV4's canonical form (parameters sorted, each with '=').
std::string s3_url(const S3Config& cfg, const std::string& bucket, const std::string& key,
                   const std::string& query = "");

// RFC 3986 encoding of everything but unreserved characters (and '/' when keep_slash).
std::string uri_encode(const std::string& s, bool keep_slash);

}  // namespace uffdlazy::remote
