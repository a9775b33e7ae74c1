#include "tools/remote/upload.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "tools/remote/http_client.h"
#include "tools/remote/progress.h"
#include "tools/remote/remote_snapshot.h"

namespace uffdlazy::remote {

namespace {

struct Mapped {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~Mapped() {
    if (data && size) munmap(const_cast<uint8_t*>(data), size);
  }
};

std::string unquote(const std::string& etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return etag.substr(1, etag.size() - 2);
  return etag;
}

bool looks_like_md5_etag(const std::string& etag) {
  const std::string e = unquote(etag);
  const std::string hexpart = e.substr(0, e.find('-'));
  if (hexpart.size() != 32) return false;
  for (char c : hexpart) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// What S3 reports as the ETag of a multipart object: the MD5 of the parts' binary MD5s, "-N".
std::string multipart_etag(const uint8_t* data, size_t size, size_t part_size) {
  std::string md5s;
  size_t parts = 0;
  for (size_t off = 0; off < size; off += part_size, parts++) {
    const std::string h = md5_hex_of(data + off, std::min(part_size, size - off));
    for (size_t i = 0; i < h.size(); i += 2) md5s += char(std::stoi(h.substr(i, 2), nullptr, 16));
  }
  return md5_hex_of(md5s.data(), md5s.size()) + "-" + std::to_string(parts);
}

}  // namespace

int upload_file(const std::string& file, const Location& loc, const UploadOptions& options, UploadResult* out,
                std::string* err) {
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st{};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *err = file + ": " + (fd < 0 ? std::strerror(errno) : "not a regular file");
    if (fd >= 0) close(fd);
    return 2;
  }
  Mapped map;
  map.size = size_t(st.st_size);
  if (map.size) {
    void* m = mmap(nullptr, map.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      *err = file + ": cannot map it: " + std::strerror(errno);
      close(fd);
      return 2;
    }
    map.data = static_cast<const uint8_t*>(m);
  }
  close(fd);
  // A snapshot's digest: the header's, checked against the file's metadata before anything moves.
  const SnapshotDigest sd = file_digest(file);
  if (sd.snapshot) {
    if (!sd.error.empty()) {
      *err = file + ": " + sd.error;
      return 2;
    }
    out->digest = sd.digest;
    if (!loc.digest.empty() && loc.digest != sd.digest) {
      *err = file + ": its index digest is " + sd.digest + ", not the " + loc.digest + " the URL pins";
      return 2;
    }
  }
  ObjectClient client;
  if (!client.init(loc, err)) return 2;

  const bool multipart = loc.kind == Location::kS3 && map.size > 2 * options.part_size;
  std::string expected_etag;
  out->parts = 1;
  Progress progress("push " + file, options.progress ? map.size : 0);
  if (!multipart) {
    Response r = client.put(map.data, map.size);
    if (!r.ok) {
      *err = r.error;
      return 1;
    }
    expected_etag = md5_hex_of(map.data, map.size);
  } else {
    std::string upload;
    Response r = client.create_multipart(&upload);
    if (!r.ok) {
      *err = "cannot start the upload: " + r.error;
      return 1;
    }
    const size_t part_size = size_t(options.part_size);
    const size_t parts = (map.size + part_size - 1) / part_size;
    out->parts = parts;
    std::vector<std::string> etags(parts);
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> sent{0};
    std::atomic<bool> failed{false};
    std::mutex err_lock;
    std::string first_error;
    auto worker = [&] {
      ObjectClient mine(client);
      for (size_t p; !failed.load() && (p = next.fetch_add(1)) < parts;) {
        const size_t off = p * part_size, len = std::min(part_size, map.size - off);
        Response pr = mine.upload_part(upload, uint32_t(p + 1), map.data + off, len, &etags[p]);
        if (!pr.ok) {
          std::lock_guard<std::mutex> g(err_lock);
          if (first_error.empty()) first_error = "part " + std::to_string(p + 1) + ": " + pr.error;
          failed = true;
          return;
        }
        if (options.progress) progress.update(sent += len);
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < options.parallel && size_t(t) < parts; t++) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (!failed) {
      r = client.complete_multipart(upload, etags);
      if (!r.ok) first_error = "completing the upload: " + r.error;
    }
    if (failed || !r.ok) {
      progress.done();
      client.abort_multipart(upload);  // leave no parts behind (a failure here changes nothing)
      *err = first_error;
      return 1;
    }
    expected_etag = multipart_etag(map.data, map.size, part_size);
  }
  progress.done();

  // Verified: the store has exactly this many bytes, and (where its ETag is an MD5) these bytes.
  Response s = client.stat();
  if (!s.ok) {
    *err = "uploaded, but cannot verify it: " + s.error;
    return 1;
  }
  if (s.total != map.size) {
    *err = "the store holds " + std::to_string(s.total) + " bytes, not the " + std::to_string(map.size) + " sent";
    return 1;
  }
  out->checked = "size";
  if (looks_like_md5_etag(s.etag)) {
    if (unquote(s.etag) != expected_etag) {
      *err = "the store's ETag " + s.etag + " is not the file's " + expected_etag + ": the upload is damaged";
      return 1;
    }
    out->checked = "size and ETag";
  }
  out->bytes = map.size;
  out->etag = s.etag;
  return 0;
}

}  // namespace uffdlazy::remote
