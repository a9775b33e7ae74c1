// What went wrong while writing or reading a snapshot, as values plus a function that turns each
// into the text a caller prints after "uffdlazy: <file>: ". No allocation: the text is appended
// to a LineWriter.
#pragma once

#include <cstdint>

#include "core/base/line_writer.h"

namespace uffdlazy::snap {

enum class WriteError : uint8_t {
  kOk,
  kBadState,      // calls out of order (begin before open, add_region after commit, ...)
  kBadArgument,   // page size, path or id length out of range; err says EINVAL/ENAMETOOLONG
  kCreateTemp,    // the temporary file could not be created (EACCES, ENOENT, EROFS, ...)
  kWrite,         // writing the file failed (ENOSPC, EFBIG, EDQUOT, EIO, ...)
  kSourceFailed,  // the page provider could not produce a page; err is its errno
  kNoMemory,      // a mapping for the writer's buffers failed
  kSync,          // fsync or close of the temporary file failed
  kRename,        // renaming it to the final name failed
};

struct WriteStatus {
  WriteError error = WriteError::kOk;
  int err = 0;  // errno when the failure came from the kernel, else 0
  bool ok() const { return error == WriteError::kOk; }
};

const char* write_error_name(WriteError e);
// Appends e.g. "cannot write the snapshot: No space left on device (ENOSPC)".
void describe(const WriteStatus& s, LineWriter& out);

enum class ReadError : uint8_t {
  kOk,
  kOpenFailed,          // open/fstat/mmap failed; err says why
  kNotRegularFile,
  kEmpty,               // zero bytes
  kTruncated,           // a = actual size, b = the size some field needs
  kBadMagic,            // not a uffdlazy snapshot
  kUnsupportedVersion,  // a = major, b = minor
  kUnknownRequiredSection,  // a = section type
  kHeaderChecksum,
  kIndexChecksum,       // what = which table, or nullptr for region a's page index
  kPageSizeMismatch,    // a = the file's page size, b = this machine's
  kMalformed,           // checksums fine but a field contradicts another; what says which
  kForeign,             // recorded from another executable; what = its path
  kNotOpen,
  kAncestorMissing,     // an incremental image's ancestor cannot be opened: a = its depth, what = its path
  kAncestorChanged,     // it is not the file the image was written against: a = depth, what = path
};

struct ReadStatus {
  ReadError error = ReadError::kOk;
  int err = 0;
  uint64_t a = 0;
  uint64_t b = 0;
  const char* what = nullptr;  // static text, or (kForeign) a NUL-terminated path in the mapping
  bool ok() const { return error == ReadError::kOk; }
};

const char* read_error_name(ReadError e);
// Appends e.g. "truncated: the file has 4096 bytes but the snapshot needs 8192".
void describe(const ReadStatus& s, LineWriter& out);

}  // namespace uffdlazy::snap
