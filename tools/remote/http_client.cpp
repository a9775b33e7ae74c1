#include "tools/remote/http_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "core/base/env_config.h"

extern char** environ;

namespace uffdlazy::remote {

namespace {

// libcurl's global state, set up once before the first handle (and never torn down: threads of
// the fetcher may still use handles while the process exits).
void global_init() {
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)done;
}

std::string hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; i++) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string base64(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, int(n));
  out.resize(size_t(len));
  return out;
}

std::string digest_of(const EVP_MD* md, const void* data, size_t n, bool as_base64 = false) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data, n, out, &len, md, nullptr);
  return as_base64 ? base64(out, len) : hex(out, len);
}

const char* reason(long code) {
  switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "";
}

// The text of <Tag>...</Tag> in an S3 XML answer, or "".
std::string xml_value(const std::string& xml, const char* tag) {
  const std::string open = std::string("<") + tag + ">", close = std::string("</") + tag + ">";
  const size_t a = xml.find(open);
  if (a == std::string::npos) return "";
  const size_t b = xml.find(close, a + open.size());
  return b == std::string::npos ? "" : xml.substr(a + open.size(), b - a - open.size());
}

// What an S3 error code means for the user, in a few words.
std::string hint(long http, const std::string& code) {
  if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId") return "the credentials were refused";
  if (code == "AccessDenied" || http == 403) return "access denied";
  if (code == "NoSuchKey" || (http == 404 && code.empty())) return "no such object";
  if (code == "NoSuchBucket") return "no such bucket";
  if (http == 412) return "the object was replaced (its ETag changed)";
  if (code == "SlowDown") return "the server asks to slow down";
  return "";
}

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

uint64_t configured_timeout() {
  Config cfg;
  LineWriter err;
  // A bad value is reported by whoever validates the environment first (the CLI refuses it).
  return parse_config(environ, &cfg, &err) ? cfg.fetch_timeout_s : 60;
}

}  // namespace

std::string sha256_hex_of(const void* data, size_t length) { return digest_of(EVP_sha256(), data, length); }
std::string md5_hex_of(const void* data, size_t length) { return digest_of(EVP_md5(), data, length); }

struct ObjectClient::Request {
  const char* method = "GET";
  std::string query;  // canonical (see s3_url)
  bool ranged = false;
  bool suffix = false;       // Range: bytes=-length (the last `length` bytes)
  bool allow_short = false;  // fewer bytes than asked are fine when they end the object
  uint64_t from = 0, length = 0;
  std::string if_match;
  const void* body = nullptr;
  size_t body_length = 0;
  std::string content_type;
  bool content_md5 = false;
  char* dst = nullptr;  // a ranged GET's destination, `length` bytes
  // Filled by each attempt.
  uint64_t received = 0;
  bool overflow = false;
  std::string text;  // any other body (XML answers, errors), bounded
  std::string etag;
  uint64_t total = 0;
  bool total_known = false;
  uint64_t content_length = 0;
  bool content_length_known = false;
  long status = 0;  // of the response being received (bodies of errors never go to dst)
};

namespace {

size_t on_body(char* p, size_t size, size_t n, void* user) {
  auto* r = static_cast<ObjectClient::Request*>(user);
  const size_t bytes = size * n;
  if (r->dst && r->status >= 200 && r->status < 300) {
    if (r->received + bytes > r->length) {
      r->overflow = true;
      return 0;  // more than asked for: stop (the attempt fails)
    }
    memcpy(r->dst + r->received, p, bytes);
    r->received += bytes;
  } else if (r->text.size() < (1u << 20)) {
    r->text.append(p, bytes);
  }
  return bytes;
}

size_t on_header(char* p, size_t size, size_t n, void* user) {
  auto* r = static_cast<ObjectClient::Request*>(user);
  std::string line(p, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a 100 Continue or a redirect)
    const size_t sp = line.find(' ');
    r->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
    r->etag.clear();
    r->total_known = r->content_length_known = false;
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon), value = line.substr(colon + 1);
  for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  while (!value.empty() && value.front() == ' ') value.erase(0, 1);
  if (name == "etag") {
    r->etag = value;
  } else if (name == "content-range") {
    const size_t slash = value.find('/');
    if (slash != std::string::npos && value.compare(slash + 1, 1, "*") != 0) {
      r->total = std::strtoull(value.c_str() + slash + 1, nullptr, 10);
      r->total_known = true;
    }
  } else if (name == "content-length") {
    r->content_length = std::strtoull(value.c_str(), nullptr, 10);
    r->content_length_known = true;
  }
  return size * n;
}

}  // namespace

ObjectClient::~ObjectClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

ObjectClient::ObjectClient(const ObjectClient& other) : loc_(other.loc_), s3_(other.s3_), timeout_s_(other.timeout_s_) {}

bool ObjectClient::init(const Location& loc, std::string* err) {
  loc_ = loc;
  timeout_s_ = configured_timeout();
  if (loc.kind == Location::kS3 && !load_s3_config(&s3_, err)) return false;
  if (loc.kind == Location::kFile) {
    *err = "not a remote location";
    return false;
  }
  return true;
}

std::string ObjectClient::url(const std::string& query) const {
  if (loc_.kind == Location::kS3) return s3_url(s3_, loc_.bucket, loc_.key, query);
  if (query.empty()) return loc_.url;
  return loc_.url + (loc_.url.find('?') == std::string::npos ? "?" : "&") + query;
}

Response ObjectClient::attempt(Request& req) {
  global_init();
  if (!curl_) curl_ = curl_easy_init();
  CURL* c = static_cast<CURL*>(curl_);
  Response out;
  if (!c) {
    out.error = "cannot start a transfer (libcurl)";
    return out;
  }
  // Options go, connections stay (curl_easy_reset keeps the handle's connection cache).
  curl_easy_reset(c);
  req.received = 0;
  req.status = 0;
  req.overflow = false;
  req.text.clear();
  req.etag.clear();
  req.total_known = req.content_length_known = false;
  const std::string target = url(req.query);
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  // A connection that stalls (no byte for 15 s) is a failed attempt, retried like a reset.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 15L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &req);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &req);
  if (loc_.kind == Location::kHttp) curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  struct curl_slist* headers = nullptr;
  auto add = [&](const std::string& h) { headers = curl_slist_append(headers, h.c_str()); };
  if (req.suffix) {
    add("Range: bytes=-" + std::to_string(req.length));
  } else if (req.ranged) {
    add("Range: bytes=" + std::to_string(req.from) + "-" + std::to_string(req.from + req.length - 1));
  }
  if (!req.if_match.empty()) add("If-Match: " + req.if_match);
  const bool has_body = std::strcmp(req.method, "PUT") == 0 || std::strcmp(req.method, "POST") == 0;
  if (has_body) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body ? req.body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(req.body_length));
    add("Content-Type: " + (req.content_type.empty() ? std::string("application/octet-stream") : req.content_type));
    if (req.content_md5) add("Content-MD5: " + digest_of(EVP_md5(), req.body, req.body_length, true));
  } else if (std::strcmp(req.method, "GET") != 0) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method);
  }
  std::string sigv4;
  if (loc_.kind == Location::kS3) {
    // The payload's hash, which SigV4 signs; a request without it is refused by radosgw.
    add("x-amz-content-sha256: " + sha256_hex_of(req.body ? req.body : "", req.body ? req.body_length : 0));
    if (!s3_.session_token.empty()) add("x-amz-security-token: " + s3_.session_token);
    sigv4 = "aws:amz:" + s3_.region + ":s3";
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, s3_.access_key.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, s3_.secret_key.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  long http = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
  out.http = http;
  out.etag = req.etag;
  out.total = req.total_known ? req.total : req.content_length;
  out.total_known = req.total_known || (!req.ranged && req.content_length_known);
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && req.overflow)) {
    out.error = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(" (") + errbuf + ")" : "");
    // Refused, reset, timed out, cut short: the network or the server may recover. A name that
    // does not resolve, a malformed URL or a refused TLS certificate will not.
    out.transient = rc != CURLE_COULDNT_RESOLVE_HOST && rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL &&
                    rc != CURLE_PEER_FAILED_VERIFICATION && rc != CURLE_SSL_CACERT_BADFILE && rc != CURLE_WRITE_ERROR &&
                    rc != CURLE_OUT_OF_MEMORY && rc != CURLE_LOGIN_DENIED;
    return out;
  }
  out.transient = http >= 500 || http == 429 || http == 408;
  if (http >= 200 && http < 300) {
    if (req.dst && (req.suffix || req.allow_short)) {
      // A head or tail: whatever the server sent, as long as it is what the range allows.
      const uint64_t total = req.total_known ? req.total : req.content_length;
      const uint64_t want = std::min<uint64_t>(req.length, total);
      if (req.received != want || (http == 200 && req.received != total)) {
        out.error = "truncated body: " + std::to_string(req.received) + " of " + std::to_string(want) + " bytes";
        out.transient = true;
        return out;
      }
      out.total = total;
      out.total_known = true;
    } else if (req.dst) {
      if (http == 200 && (req.from != 0 || !req.total_known)) {
        // A whole object where a range was asked: the server ignores Range (or the range was
        // the whole object; a 200 then says the total in Content-Length).
        if (!(req.from == 0 && req.content_length_known && req.content_length == req.length)) {
          out.error = "the server ignores Range requests (it answered 200 with the whole object)";
          out.transient = false;
          return out;
        }
        out.total = req.content_length;
        out.total_known = true;
      }
      if (req.overflow || req.received != req.length) {
        out.error = "truncated body: " + std::to_string(req.received) + " of " + std::to_string(req.length) + " bytes";
        out.transient = true;
        return out;
      }
    }
    const std::string err_code = xml_value(req.text, "Code");
    if (req.text.find("<Error>") != std::string::npos && !err_code.empty()) {
      out.error = "HTTP " + std::to_string(http) + " but the answer is an error (" + err_code + ")";
      out.transient = err_code == "InternalError" || err_code == "SlowDown";
      return out;
    }
    out.ok = true;
    return out;
  }
  const std::string code = xml_value(req.text, "Code");
  std::string what = hint(http, code);
  out.error = "HTTP " + std::to_string(http) + (reason(http)[0] ? std::string(" ") + reason(http) : "");
  if (!code.empty() || !what.empty()) {
    out.error += " (" + code + (code.empty() || what.empty() ? "" : ": ") + what + ")";
  }
  return out;
}

Response ObjectClient::perform(Request& req) {
  std::mt19937_64 rng(std::random_device{}());
  uint64_t deadline = 0;
  uint32_t attempts = 0;
  const uint64_t first = now_ms();
  for (;;) {
    Response r = attempt(req);
    r.attempts = ++attempts;
    if (r.ok) return r;
    if (!r.transient) return r;
    const uint64_t now = now_ms();
    if (!deadline) deadline = now + timeout_s_ * 1000;
    if (now >= deadline) {
      r.error += " (" + std::to_string(attempts) + " attempts in " + std::to_string((now - first) / 1000) + " s)";
      return r;
    }
    // Exponential backoff with full jitter: 100 ms doubling up to 4 s, a random share of it.
    const uint64_t cap = std::min<uint64_t>(4000, 100ull << std::min<uint32_t>(attempts - 1, 6));
    uint64_t wait = std::uniform_int_distribution<uint64_t>(cap / 4, cap)(rng);
    if (now + wait > deadline) wait = deadline - now;
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
  }
}

Response ObjectClient::stat() {
  unsigned char byte;
  Request req;
  req.ranged = true;
  req.from = 0;
  req.length = 1;
  req.dst = reinterpret_cast<char*>(&byte);
  Response r = perform(req);
  if (!r.ok && r.http == 416) {
    // An empty object has no first byte.
    r.ok = true;
    r.total = 0;
    r.total_known = true;
    r.error.clear();
  }
  if (r.ok && !r.total_known) {
    r.ok = false;
    r.error = "the server did not say the object's size";
  }
  return r;
}

Response ObjectClient::get(uint64_t offset, uint64_t length, void* dst, const std::string& if_match) {
  Request req;
  req.ranged = true;
  req.from = offset;
  req.length = length;
  req.dst = static_cast<char*>(dst);
  req.if_match = if_match;
  if (length == 0) return Response{true};
  return perform(req);
}

Response ObjectClient::get_head(uint64_t max, std::vector<uint8_t>* out, const std::string& if_match) {
  out->assign(max, 0);
  Request req;
  req.ranged = req.allow_short = true;
  req.from = 0;
  req.length = max;
  req.dst = reinterpret_cast<char*>(out->data());
  req.if_match = if_match;
  Response r = perform(req);
  if (!r.ok && r.http == 416) {  // an empty object
    r = Response{true};
    r.total_known = true;
    req.received = 0;
  }
  out->resize(r.ok ? req.received : 0);
  return r;
}

Response ObjectClient::get_tail(uint64_t max, std::vector<uint8_t>* out, uint64_t* at, const std::string& if_match) {
  out->assign(max, 0);
  Request req;
  req.suffix = true;
  req.length = max;
  req.dst = reinterpret_cast<char*>(out->data());
  req.if_match = if_match;
  Response r = perform(req);
  out->resize(r.ok ? req.received : 0);
  *at = r.ok ? r.total - req.received : 0;
  return r;
}

Response ObjectClient::put(const void* data, size_t length) {
  Request req;
  req.method = "PUT";
  req.body = data;
  req.body_length = length;
  req.content_md5 = loc_.kind == Location::kS3;  // the store checks the body it received
  return perform(req);
}

Response ObjectClient::create_multipart(std::string* upload_id) {
  Request req;
  req.method = "POST";
  req.query = "uploads=";
  Response r = perform(req);
  if (r.ok) {
    *upload_id = xml_value(req.text, "UploadId");
    if (upload_id->empty()) {
      r.ok = false;
      r.error = "the store did not return an upload id";
    }
  }
  return r;
}

Response ObjectClient::upload_part(const std::string& upload_id, uint32_t part, const void* data, size_t length,
                                  std::string* etag) {
  Request req;
  req.method = "PUT";
  req.query = "partNumber=" + std::to_string(part) + "&uploadId=" + uri_encode(upload_id, false);
  req.body = data;
  req.body_length = length;
  req.content_md5 = true;
  Response r = perform(req);
  if (r.ok) *etag = r.etag;
  return r;
}

Response ObjectClient::complete_multipart(const std::string& upload_id, const std::vector<std::string>& etags) {
  std::string xml = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); i++) {
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags[i] + "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  Request req;
  req.method = "POST";
  req.query = "uploadId=" + uri_encode(upload_id, false);
  req.body = xml.data();
  req.body_length = xml.size();
  req.content_type = "application/xml";
  return perform(req);
}

Response ObjectClient::abort_multipart(const std::string& upload_id) {
  Request req;
  req.method = "DELETE";
  req.query = "uploadId=" + uri_encode(upload_id, false);
  return perform(req);
}

}  // namespace uffdlazy::remote
