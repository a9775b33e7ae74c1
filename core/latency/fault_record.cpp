#include "core/latency/fault_record.h"

namespace uffdlazy {

const char* resolution_name(Resolution r) {
  switch (r) {
    case Resolution::kSnapshotPage: return "snapshot_page";
    case Resolution::kZero: return "zero";
    case Resolution::kDuplicate: return "duplicate";
    case Resolution::kAlreadyPresent: return "already_present";
    case Resolution::kUnmapped: return "unmapped";
    case Resolution::kError: return "error";
  }
  return "unknown";
}

}  // namespace uffdlazy
