#include "tools/remote/remote_snapshot.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core/snapshot/format.h"
#include "core/snapshot/index_digest.h"
#include "core/snapshot/snapshot_reader.h"
#include "tools/snapshot_cli_common.h"

namespace uffdlazy::remote {

namespace {

// The suffix fetched with the header: the tables of a snapshot of up to ~1 GiB of pages (16 bytes
// of index per page) in one request.
constexpr uint64_t kTailGuess = 4ull << 20;
constexpr uint64_t kHeadBytes = 64 * 1024;
constexpr uint64_t kChunk = 8ull << 20;  // per request when fetching everything

std::string hex_digest(const uint8_t* d) {
  char hex[65];
  snap::sha256_hex(d, hex);
  return hex;
}

bool write_at(int fd, const void* p, size_t n, uint64_t at) {
  const char* b = static_cast<const char*>(p);
  while (n) {
    const ssize_t w = pwrite(fd, b, n, off_t(at));
    if (w <= 0) return false;
    b += w;
    n -= size_t(w);
    at += uint64_t(w);
  }
  return true;
}

bool make_memfd(FetchedObject* out, uint64_t size, std::string* err) {
  // A descriptor given by the caller (the fetcher's view) is used as it is.
  if (out->fd < 0) out->fd = memfd_create("uffdlazy-remote", MFD_CLOEXEC);
  if (out->fd < 0 || ftruncate(out->fd, off_t(size)) != 0) {
    *err = std::string("cannot make room for the object in memory: ") + std::strerror(errno);
    return false;
  }
  out->size = size;
  return true;
}

}  // namespace

FetchedObject::~FetchedObject() {
  if (fd >= 0) close(fd);
}

SnapshotDigest file_digest(const std::string& path) {
  SnapshotDigest d;
  snap::SnapshotReader r;
  const snap::ReadStatus st = r.open(path.c_str(), /*native_page_size=*/false);
  if (st.error == snap::ReadError::kBadMagic || st.error == snap::ReadError::kEmpty ||
      st.error == snap::ReadError::kNotRegularFile || st.error == snap::ReadError::kOpenFailed) {
    return d;  // not a snapshot at all: any file may be pushed
  }
  d.snapshot = true;
  if (!st.ok()) {
    d.error = "a damaged snapshot: " + cli::read_status_text(st);
    return d;
  }
  uint8_t now[32];
  if (!r.compute_index_digest(now)) {
    d.error = "cannot compute its index digest";
    return d;
  }
  if (snap::has_index_digest(r.recorded_index_digest()) && memcmp(now, r.recorded_index_digest(), 32) != 0) {
    d.error = "its metadata hashes to " + hex_digest(now) + " but its header records " +
              hex_digest(r.recorded_index_digest()) + " (damaged)";
    return d;
  }
  d.digest = hex_digest(now);
  return d;
}

bool check_index_digest(const FetchedObject& object, const std::string& pinned, std::string* err) {
  char magic[sizeof snap::kMagic] = {};
  if (pread(object.fd, magic, sizeof magic, 0) != ssize_t(sizeof magic) || memcmp(magic, snap::kMagic, sizeof magic)) {
    return true;  // not a snapshot: the reader says so
  }
  void* m = mmap(nullptr, object.size, PROT_READ, MAP_PRIVATE, object.fd, 0);
  if (m == MAP_FAILED) {
    *err = std::string("cannot map the fetched metadata: ") + std::strerror(errno);
    return false;
  }
  const uint8_t* base = static_cast<const uint8_t*>(m);
  snap::FileHeader h;
  memcpy(&h, base, sizeof h);
  uint8_t now[32];
  const bool computed = snap::compute_index_digest(base, object.size, now);
  munmap(m, object.size);
  if (!computed) {
    *err = "not a complete snapshot (its header and section table do not fit the object)";
    return false;
  }
  const bool recorded = snap::has_index_digest(h.index_digest);
  if (recorded && memcmp(now, h.index_digest, 32) != 0) {
    *err = "index digest mismatch: the metadata hashes to " + hex_digest(now) + " but the header records " +
           hex_digest(h.index_digest) + " (damaged or altered)";
    return false;
  }
  if (!pinned.empty() && pinned != hex_digest(now)) {
    *err = "index digest mismatch: the snapshot's is " + hex_digest(now) + ", not the pinned " + pinned;
    return false;
  }
  return true;
}

bool fetch_snapshot_metadata(const ObjectClient& client, const std::string& digest, FetchedObject* out,
                             std::string* err) {
  // The header and a suffix, at once, each on a connection of its own.
  std::vector<uint8_t> head, tail;
  uint64_t tail_at = 0;
  Response rh, rt;
  {
    ObjectClient second(client);
    std::thread t([&] { rt = second.get_tail(kTailGuess, &tail, &tail_at); });
    ObjectClient first(client);
    rh = first.get_head(kHeadBytes, &head);
    t.join();
  }
  out->requests += 2;
  if (!rh.ok || !rt.ok) {
    // A tail of an empty object is refused (416); the head says what the object is.
    *err = !rh.ok ? rh.error : (rh.total == 0 ? "empty: 0 bytes" : rt.error);
    return false;
  }
  if (rh.etag != rt.etag || rh.total != rt.total) {
    *err = "the object changed while it was read (ETag " + rh.etag + ", then " + rt.etag + "); try again";
    return false;
  }
  out->etag = rh.etag;
  out->bytes_fetched += head.size() + tail.size();
  if (rh.total == 0) {
    *err = "empty: 0 bytes";
    return false;
  }
  if (!make_memfd(out, rh.total, err) || !write_at(out->fd, head.data(), head.size(), 0) ||
      !write_at(out->fd, tail.data(), tail.size(), tail_at)) {
    if (err->empty()) *err = "cannot write the fetched bytes to memory";
    return false;
  }
  // What the tables need that the two requests did not bring: the section table, then the
  // sections it lists (except the page data). At most two more round trips, usually none.
  uint64_t have_from = tail_at;  // [0, head.size()) and [have_from, size) are in the memfd
  auto ensure = [&](uint64_t from, uint64_t to) -> bool {
    if (to > out->size || from >= to || (to <= head.size()) || from >= have_from) return true;
    const uint64_t a = std::max<uint64_t>(from, head.size());
    const uint64_t b = std::min<uint64_t>(to, have_from);
    if (a >= b) return true;
    std::vector<uint8_t> buf(b - a);
    Response r = ObjectClient(client).get(a, b - a, buf.data(), out->etag);
    out->requests++;
    if (!r.ok) {
      *err = r.error;
      return false;
    }
    out->bytes_fetched += buf.size();
    return write_at(out->fd, buf.data(), buf.size(), a);
  };
  if (head.size() >= sizeof(snap::FileHeader) && memcmp(head.data(), snap::kMagic, sizeof snap::kMagic) == 0) {
    snap::FileHeader h;
    memcpy(&h, head.data(), sizeof h);
    const uint64_t table_bytes = uint64_t(h.section_count) * h.section_entry_size;
    if (h.section_entry_size >= sizeof(snap::SectionEntry) && h.section_count <= 65536 &&
        h.section_table_offset <= out->size && table_bytes <= out->size - h.section_table_offset) {
      if (!ensure(h.section_table_offset, h.section_table_offset + table_bytes)) return false;
      std::vector<uint8_t> table(table_bytes);
      if (pread(out->fd, table.data(), table_bytes, off_t(h.section_table_offset)) != ssize_t(table_bytes)) {
        *err = "cannot read the fetched section table";
        return false;
      }
      uint64_t lowest = have_from;
      for (uint32_t i = 0; i < h.section_count; i++) {
        snap::SectionEntry e;
        memcpy(&e, table.data() + uint64_t(i) * h.section_entry_size, sizeof e);
        if (e.type == uint32_t(snap::SectionType::kData) || e.offset > out->size || e.length > out->size - e.offset)
          continue;
        lowest = std::min(lowest, e.offset);
      }
      // One request for everything missing between the lowest table and what we have.
      if (!ensure(lowest, have_from)) return false;
      return check_index_digest(*out, digest, err);
    }
  }
  return true;  // not a snapshot (or a damaged header): the reader says which
}

bool fetch_whole_object(const ObjectClient& client, FetchedObject* out, std::string* err, Progress* progress) {
  Response s = ObjectClient(client).stat();
  out->requests++;
  if (!s.ok) {
    *err = s.error;
    return false;
  }
  out->etag = s.etag;
  if (s.total == 0) {
    *err = "empty: 0 bytes";
    return false;
  }
  if (!make_memfd(out, s.total, err)) return false;
  if (progress) progress->set_total(s.total);
  const uint64_t chunks = (s.total + kChunk - 1) / kChunk;
  std::atomic<uint64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::mutex lock;
  auto worker = [&] {
    ObjectClient mine(client);
    std::vector<uint8_t> buf(kChunk);
    for (uint64_t c; !failed && (c = next.fetch_add(1)) < chunks;) {
      const uint64_t at = c * kChunk, len = std::min(kChunk, s.total - at);
      Response r = mine.get(at, len, buf.data(), out->etag);
      if (!r.ok || !write_at(out->fd, buf.data(), len, at)) {
        std::lock_guard<std::mutex> g(lock);
        if (!failed.exchange(true)) *err = r.ok ? "cannot write the fetched bytes to memory" : r.error;
        return;
      }
      const uint64_t total_done = done += len;
      if (progress) progress->update(total_done);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4 && uint64_t(i) < chunks; i++) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  out->requests += chunks;
  out->bytes_fetched += failed ? 0 : s.total;
  return !failed;
}

}  // namespace uffdlazy::remote
