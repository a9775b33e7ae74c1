// Requests to one remote object, S3 or plain HTTP(S), through libcurl: ranged GETs, PUTs and S3's
// multipart upload, each retried on transient failures (connection refused or reset, timeouts,
// 5xx, 503 SlowDown, a body shorter than asked) with exponential backoff and full jitter until
// UFFDLAZY_FETCH_TIMEOUT has passed since the first failure. S3 requests are signed by libcurl's
// SigV4 (CURLOPT_AWS_SIGV4); x-amz-content-sha256 is ours to send (curl 7.88 does not).
//
// One ObjectClient holds one curl handle, so successive requests reuse its keep-alive connection;
// it is not thread-safe: give each thread its own copy (the copy gets a handle of its own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/remote/location.h"
#include "tools/remote/s3_config.h"

namespace uffdlazy::remote {

struct Response {
  bool ok = false;
  long http = 0;          // the last status (0: no answer)
  std::string etag;       // as the server sent it, quotes included
  uint64_t total = 0;     // the object's size, from Content-Range or Content-Length
  bool total_known = false;
  std::string error;      // one line naming the problem, when !ok
  uint32_t attempts = 0;  // requests sent, retries included
  bool transient = false; // the failure may go away (retried until the deadline)
};

class ObjectClient {
 public:
  ObjectClient() = default;
  ~ObjectClient();
  ObjectClient(const ObjectClient& other);  // same object and settings, a handle of its own
  ObjectClient& operator=(const ObjectClient&) = delete;

  // For `loc` (remote). Reads the S3 settings for s3://. False with *err (no credentials, a bad
  // setting) before any request is made.
  bool init(const Location& loc, std::string* err);
  const Location& location() const { return loc_; }
  // Seconds a failing request keeps being retried (UFFDLAZY_FETCH_TIMEOUT, default 60).
  void set_timeout(uint64_t seconds) { timeout_s_ = seconds; }

  // Size and ETag, from a GET of the first byte (a presigned GET URL may not allow HEAD).
  Response stat();
  // Bytes [offset, offset + length) into dst (room for length bytes). With if_match, a changed
  // object fails with 412 instead of answering with the new object's bytes.
  Response get(uint64_t offset, uint64_t length, void* dst, const std::string& if_match = "");
  // The first (head) or last (tail) `max` bytes, fewer when the object is smaller; r.total says
  // its size. For a tail, *at is where the bytes start in the object.
  Response get_head(uint64_t max, std::vector<uint8_t>* out, const std::string& if_match = "");
  Response get_tail(uint64_t max, std::vector<uint8_t>* out, uint64_t* at, const std::string& if_match = "");

  Response put(const void* data, size_t length);
  // S3 multipart upload.
  Response create_multipart(std::string* upload_id);
  Response upload_part(const std::string& upload_id, uint32_t part, const void* data, size_t length,
                       std::string* etag);
  Response complete_multipart(const std::string& upload_id, const std::vector<std::string>& etags);
  Response abort_multipart(const std::string& upload_id);

  struct Request;  // one request and what its attempts received (http_client.cpp)

 private:
  Response perform(Request& req);
  Response attempt(Request& req);
  std::string url(const std::string& query) const;

  Location loc_;
  S3Config s3_;
  uint64_t timeout_s_ = 60;
  void* curl_ = nullptr;  // CURL*
};

// Hex SHA-256 (libcrypto) of a buffer, as x-amz-content-sha256 wants it.
std::string sha256_hex_of(const void* data, size_t length);
// Hex MD5 of a buffer, and of a whole file ("" when it cannot be read).
std::string md5_hex_of(const void* data, size_t length);

}  // namespace uffdlazy::remote
