// `uffdlazy push FILE URL`: uploads a snapshot, a process image or a working set (any file) to an
// S3 object or an HTTP(S) URL that takes a PUT (a presigned URL). Large files go up in parts (S3
// multipart upload), several at once, each part retried on its own; the result is verified (the
// store's size and ETag against the file's). For a snapshot it prints the index digest, which a
// restore may pin (URL#sha256=HEX).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/base/env_config.h"
#include "core/snapshot/index_digest.h"
#include "core/snapshot/snapshot_reader.h"
#include "tools/commands.h"
#include "tools/remote/http_client.h"
#include "tools/remote/location.h"
#include "tools/remote/progress.h"
#include "tools/remote/remote_snapshot.h"

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
    const std::string h = remote::md5_hex_of(data + off, std::min(part_size, size - off));
    for (size_t i = 0; i < h.size(); i += 2) md5s += char(std::stoi(h.substr(i, 2), nullptr, 16));
  }
  return remote::md5_hex_of(md5s.data(), md5s.size()) + "-" + std::to_string(parts);
}

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
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st{};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fprintf(stderr, "uffdlazy push: %s: %s\n", file.c_str(),
                 fd < 0 ? std::strerror(errno) : "not a regular file");
    if (fd >= 0) close(fd);
    return 2;
  }
  Mapped map;
  map.size = size_t(st.st_size);
  if (map.size) {
    void* m = mmap(nullptr, map.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "uffdlazy push: %s: cannot map it: %s\n", file.c_str(), std::strerror(errno));
      close(fd);
      return 2;
    }
    map.data = static_cast<const uint8_t*>(m);
  }
  close(fd);
  // A snapshot's digest: the header's, checked against the file's metadata before anything moves.
  std::string digest;
  remote::SnapshotDigest sd = remote::file_digest(file);
  if (sd.snapshot) {
    if (!sd.error.empty()) {
      std::fprintf(stderr, "uffdlazy push: %s: %s\n", file.c_str(), sd.error.c_str());
      return 2;
    }
    digest = sd.digest;
    if (!loc.digest.empty() && loc.digest != digest) {
      std::fprintf(stderr, "uffdlazy push: %s: its index digest is %s, not the %s the URL pins\n", file.c_str(),
                   digest.c_str(), loc.digest.c_str());
      return 2;
    }
  }
  remote::ObjectClient client;
  if (!client.init(loc, &err)) {
    std::fprintf(stderr, "uffdlazy push: %s: %s\n", loc.text.c_str(), err.c_str());
    return 2;
  }

  const bool multipart = loc.kind == remote::Location::kS3 && map.size > 2 * part_size;
  std::string expected_etag;
  size_t parts = 1;
  remote::Progress progress("push " + file, map.size);
  if (!multipart) {
    remote::Response r = client.put(map.data, map.size);
    if (!r.ok) {
      std::fprintf(stderr, "uffdlazy push: %s: %s\n", loc.text.c_str(), r.error.c_str());
      return 1;
    }
    expected_etag = remote::md5_hex_of(map.data, map.size);
  } else {
    std::string upload;
    remote::Response r = client.create_multipart(&upload);
    if (!r.ok) {
      std::fprintf(stderr, "uffdlazy push: %s: cannot start the upload: %s\n", loc.text.c_str(), r.error.c_str());
      return 1;
    }
    parts = (map.size + part_size - 1) / part_size;
    std::vector<std::string> etags(parts);
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> sent{0};
    std::atomic<bool> failed{false};
    std::mutex err_lock;
    std::string first_error;
    auto worker = [&] {
      remote::ObjectClient mine(client);
      for (size_t p; !failed.load() && (p = next.fetch_add(1)) < parts;) {
        const size_t off = p * part_size, len = std::min<size_t>(part_size, map.size - off);
        remote::Response pr = mine.upload_part(upload, uint32_t(p + 1), map.data + off, len, &etags[p]);
        if (!pr.ok) {
          std::lock_guard<std::mutex> g(err_lock);
          if (first_error.empty()) first_error = "part " + std::to_string(p + 1) + ": " + pr.error;
          failed = true;
          return;
        }
        progress.update(sent += len);
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < parallel && size_t(t) < parts; t++) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (!failed) {
      r = client.complete_multipart(upload, etags);
      if (!r.ok) first_error = "completing the upload: " + r.error;
    }
    if (failed || !r.ok) {
      progress.done();
      client.abort_multipart(upload);  // leave no parts behind (a failure here changes nothing)
      std::fprintf(stderr, "uffdlazy push: %s: %s\n", loc.text.c_str(), first_error.c_str());
      return 1;
    }
    expected_etag = multipart_etag(map.data, map.size, part_size);
  }
  progress.done();

  // Verified: the store has exactly this many bytes, and (where its ETag is an MD5, as S3's and
  // radosgw's are for unencrypted objects) exactly these bytes.
  remote::Response s = client.stat();
  if (!s.ok) {
    std::fprintf(stderr, "uffdlazy push: %s: uploaded, but cannot verify it: %s\n", loc.text.c_str(), s.error.c_str());
    return 1;
  }
  if (s.total != map.size) {
    std::fprintf(stderr, "uffdlazy push: %s: the store holds %llu bytes, not the %zu sent\n", loc.text.c_str(),
                 (unsigned long long)s.total, map.size);
    return 1;
  }
  std::string checked = "size";
  if (looks_like_md5_etag(s.etag)) {
    if (unquote(s.etag) != expected_etag) {
      std::fprintf(stderr, "uffdlazy push: %s: the store's ETag %s is not the file's %s: the upload is damaged\n",
                   loc.text.c_str(), s.etag.c_str(), expected_etag.c_str());
      return 1;
    }
    checked = "size and ETag";
  }
  std::printf("%s -> %s: %zu bytes in %zu part%s, verified (%s), ETag %s\n", file.c_str(), loc.text.c_str(), map.size,
              parts, parts == 1 ? "" : "s", checked.c_str(), s.etag.c_str());
  if (!digest.empty()) std::printf("index digest sha256=%s\n%s#sha256=%s\n", digest.c_str(), loc.text.c_str(), digest.c_str());
  return 0;
}

}  // namespace uffdlazy::cli
