#include "core/snapshot/snapshot_status.h"

#include "core/snapshot/format.h"

namespace uffdlazy::snap {

const char* write_error_name(WriteError e) {
  switch (e) {
    case WriteError::kOk: return "ok";
    case WriteError::kBadState: return "bad-state";
    case WriteError::kBadArgument: return "bad-argument";
    case WriteError::kCreateTemp: return "create-temp";
    case WriteError::kWrite: return "write";
    case WriteError::kSourceFailed: return "source-failed";
    case WriteError::kNoMemory: return "no-memory";
    case WriteError::kSync: return "sync";
    case WriteError::kRename: return "rename";
  }
  return "?";
}

void describe(const WriteStatus& s, LineWriter& out) {
  switch (s.error) {
    case WriteError::kOk: out.str("ok"); return;
    case WriteError::kBadState: out.str("snapshot writer used out of order (internal error)"); break;
    case WriteError::kBadArgument: out.str("invalid snapshot parameters"); break;
    case WriteError::kCreateTemp: out.str("cannot create the temporary snapshot file"); break;
    case WriteError::kWrite: out.str("cannot write the snapshot"); break;
    case WriteError::kSourceFailed: out.str("cannot read a page of the target's memory"); break;
    case WriteError::kNoMemory: out.str("cannot map memory for the snapshot writer"); break;
    case WriteError::kSync: out.str("cannot flush the snapshot to disk"); break;
    case WriteError::kRename: out.str("cannot move the finished snapshot to its name"); break;
  }
  if (s.err) out.str(": ").errno_text(s.err);
}

const char* read_error_name(ReadError e) {
  switch (e) {
    case ReadError::kOk: return "ok";
    case ReadError::kOpenFailed: return "open-failed";
    case ReadError::kNotRegularFile: return "not-regular-file";
    case ReadError::kEmpty: return "empty";
    case ReadError::kTruncated: return "truncated";
    case ReadError::kBadMagic: return "bad-magic";
    case ReadError::kUnsupportedVersion: return "unsupported-version";
    case ReadError::kUnknownRequiredSection: return "unknown-required-section";
    case ReadError::kHeaderChecksum: return "header-checksum";
    case ReadError::kIndexChecksum: return "index-checksum";
    case ReadError::kPageSizeMismatch: return "page-size-mismatch";
    case ReadError::kMalformed: return "malformed";
    case ReadError::kForeign: return "foreign";
    case ReadError::kNotOpen: return "not-open";
    case ReadError::kAncestorMissing: return "ancestor-missing";
    case ReadError::kAncestorChanged: return "ancestor-changed";
  }
  return "?";
}

void describe(const ReadStatus& s, LineWriter& out) {
  switch (s.error) {
    case ReadError::kOk: out.str("ok"); return;
    case ReadError::kOpenFailed: out.str("cannot open: ").errno_text(s.err); return;
    case ReadError::kNotRegularFile: out.str("not a regular file"); return;
    case ReadError::kEmpty: out.str("empty file, not a uffdlazy snapshot"); return;
    case ReadError::kTruncated:
      out.str("truncated: the file has ").u64(s.a).str(" bytes but the snapshot needs ").u64(s.b);
      return;
    case ReadError::kBadMagic: out.str("not a uffdlazy snapshot (bad magic)"); return;
    case ReadError::kUnsupportedVersion:
      out.str("unsupported snapshot format version ").u64(s.a).ch('.').u64(s.b).str(" (this build reads ")
          .u64(kOldestReadMajor).str(".x and ").u64(kVersionMajor).str(".x");
      out.ch(')');
      return;
    case ReadError::kUnknownRequiredSection:
      out.str("unsupported snapshot: it requires section type ").u64(s.a).str(", unknown to this build");
      return;
    case ReadError::kHeaderChecksum: out.str("header checksum mismatch (the file is damaged)"); return;
    case ReadError::kIndexChecksum:
      out.str("index checksum mismatch in ");
      if (s.what) {
        out.str("the ").str(s.what);
      } else {
        out.str("the page index of region ").u64(s.a);
      }
      out.str(" (the file is damaged)");
      return;
    case ReadError::kPageSizeMismatch:
      out.str("page size mismatch: the snapshot has ").u64(s.a).str("-byte pages, this machine uses ").u64(s.b);
      return;
    case ReadError::kMalformed: out.str("malformed snapshot: ").str(s.what ? s.what : "inconsistent fields"); return;
    case ReadError::kForeign:
      out.str("foreign snapshot: it was recorded from a different executable");
      if (s.what) out.str(" (").str(s.what).ch(')');
      return;
    case ReadError::kNotOpen: out.str("no snapshot open"); return;
    case ReadError::kAncestorMissing:
      out.str("incremental image: its ");
      if (s.a == 1) out.str("parent image ");
      else out.str("ancestor image (depth ").u64(s.a).str(") ");
      out.str(s.what ? s.what : "?").str(" cannot be opened");
      if (s.err) out.str(": ").errno_text(s.err);
      out.str(" (`uffdlazy compact` makes an image that stands alone)");
      return;
    case ReadError::kAncestorChanged:
      out.str("incremental image: its ");
      if (s.a == 1) out.str("parent image ");
      else out.str("ancestor image (depth ").u64(s.a).str(") ");
      out.str(s.what ? s.what : "?").str(" is not the file it was written against (replaced or changed since)");
      return;
  }
}

}  // namespace uffdlazy::snap
