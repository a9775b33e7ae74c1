// The index digest of a snapshot (FORMAT.md, "Index digest"): a SHA-256 over everything but the
// page data, recorded in the header (FileHeader::index_digest) by the writer, so that a snapshot
// read from elsewhere (object storage, an HTTP server) can be authenticated and pinned by its
// user. Page data needs no digest: the index holds every page's checksum, and the index is covered.
//
// Covered, in this order: the header's bytes [0, header_size) with header_checksum and
// index_digest read as zeros; the section table (count x entry size bytes); then the bytes of
// every section other than the page data (type 5), in the order the table lists them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/snapshot/sha256.h"

namespace uffdlazy::snap {

class IndexDigest {
 public:
  // The header, the section table, then each covered section, in that order.
  void header(const void* header, uint32_t header_size);
  void add(const void* data, size_t len) { sha_.update(data, len); }
  void finish(uint8_t out[kSha256Size]) { sha_.finish(out); }

 private:
  Sha256 sha_;
};

// The digest of a whole snapshot in memory (a mapping of the file), from its header and section
// table. False when they do not fit in `size` bytes (the reader reports those files as damaged).
bool compute_index_digest(const uint8_t* file, uint64_t size, uint8_t out[kSha256Size]);

// Whether a header's digest field holds a digest (a 1.0 file has zeros there).
bool has_index_digest(const uint8_t digest[kSha256Size]);

}  // namespace uffdlazy::snap
