// Helpers shared by `inspect` and `verify`: opening a snapshot with the standard error line and
// turning raw fields into text.
#pragma once

#include <cstdint>
#include <string>

#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy::cli {

// Opens a snapshot for inspection (any page size) at a location: a path, or an s3:// or
// http(s):// URL (tools/remote/), of which only the header and metadata are fetched, or every
// byte with `whole` (verify). A remote snapshot's index digest is checked on the way (the
// header's against its metadata, and the pinned one: the URL's #sha256= or `digest`). On failure
// prints "uffdlazy: <location>: <problem>" to stderr and returns the status (a digest that does
// not match is kIndexChecksum, "index digest": damage).
snap::ReadStatus open_snapshot(snap::SnapshotReader& reader, const char* location, bool whole = false,
                               const std::string& digest = "");
// The header's index digest as hex, or "" when the snapshot records none (format 1.0).
std::string recorded_digest_text(const snap::SnapshotReader& reader);

std::string read_status_text(const snap::ReadStatus& s);
// True for failures that mean the file is a damaged snapshot, rather than not one at all or one
// this build cannot read.
bool is_damage(const snap::ReadStatus& s);

std::string hex_bytes(const uint8_t* p, uint32_t n);
std::string id_text(snap::IdKind kind, const uint8_t* id, uint32_t n);  // "<hex> (gnu build-id)"
const char* id_kind_name(snap::IdKind kind);
std::string prot_text(uint32_t prot);                                   // "rw-"
std::string utc_time_text(uint64_t ns_since_epoch);                     // 2024-05-01T12:00:00.123Z
std::string flags_text(uint64_t flags);                                 // "no-aslr,partial" or "none"
std::string site_text(const snap::SnapshotReader& r, uint64_t region);  // "libfoo.so+0x1234" or "-"
std::string json_string(const char* s, size_t n);                       // quoted and escaped

}  // namespace uffdlazy::cli
