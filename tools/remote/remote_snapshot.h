// A snapshot (or process image, or any file) at a remote location, brought into a memfd so that
// the ordinary SnapshotReader validates and reads it as it does a local file: only the header
// and the metadata (inspect; the start of a restore), or every byte (verify, pull). The index
// digest is checked on the way: the header's against what the fetched metadata hashes to, and the
// location's pinned one (#sha256=, --digest) against the header's.
#pragma once

#include <cstdint>
#include <string>

#include "tools/remote/http_client.h"
#include "tools/remote/progress.h"

namespace uffdlazy::remote {

// The index digest of a local file that is a snapshot.
struct SnapshotDigest {
  bool snapshot = false;  // the file is a snapshot (magic), readable or not
  std::string digest;     // hex: the header's, or computed for a 1.0 file that records none
  std::string error;      // why the snapshot cannot be read, or its digest does not match
};
SnapshotDigest file_digest(const std::string& path);

// A remote object's bytes in a memfd of its size, holes where nothing was fetched.
struct FetchedObject {
  int fd = -1;
  uint64_t size = 0;
  std::string etag;
  uint64_t requests = 0;       // ranged GETs made (retries not counted)
  uint64_t bytes_fetched = 0;
  FetchedObject() = default;
  FetchedObject(const FetchedObject&) = delete;
  FetchedObject& operator=(const FetchedObject&) = delete;
  ~FetchedObject();
};

// The first bytes and the metadata of a snapshot: one round trip of two requests in parallel (the
// header, and a suffix that holds the tables in the usual layout), then whatever the tables name
// that the suffix did not hold. Checks the index digest (see above). `digest` is the pinned digest
// (the location's or --digest), or empty. False with *err, one line.
bool fetch_snapshot_metadata(const ObjectClient& client, const std::string& digest, FetchedObject* out,
                             std::string* err);
// Every byte, in parallel ranged GETs all pinned to the first answer's ETag.
bool fetch_whole_object(const ObjectClient& client, FetchedObject* out, std::string* err, Progress* progress);

// Checks the fetched object's index digest: the header's against the metadata's, and `pinned`
// (may be empty) against both. Only for an object that holds a snapshot's metadata.
bool check_index_digest(const FetchedObject& object, const std::string& pinned, std::string* err);

}  // namespace uffdlazy::remote
