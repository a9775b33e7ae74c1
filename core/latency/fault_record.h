// What the monitor knows about one handled fault. The struct is also the trace file's record
// layout (native byte order, see REPORT_FORMAT.md), so its size and field order are fixed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

// How a fault was answered. The values match the monitor's resolution codes and are stored in
// trace files: append only.
enum class Resolution : uint8_t {
  kSnapshotPage = 0,    // copied from the snapshot
  kZero = 1,            // zero page (no snapshot data for it)
  kDuplicate = 2,       // snapshot page that duplicates another (served from the shared copy)
  kAlreadyPresent = 3,  // EEXIST: another fault or thread got there first; only woken
  kUnmapped = 4,        // ENOENT: the range went away meanwhile; only woken
  kError = 5,           // the fill failed
};
constexpr size_t kResolutionCount = 6;

// Short stable names, used as JSON keys, CSV values and trace event names.
const char* resolution_name(Resolution r);

constexpr uint32_t kNoRegion = UINT32_MAX;

struct FaultRecord {
  uint64_t timestamp_ns;  // CLOCK_MONOTONIC when the monitor read the fault
  uint64_t latency_ns;    // read -> page in place and thread woken
  uint64_t address;       // faulting address as the kernel reported it
  uint32_t tid;           // faulting thread (0 if the kernel did not say)
  uint32_t region_id;     // kNoRegion when the address was in no known region
  uint32_t pages;         // pages installed (0 for already_present / unmapped / error)
  Resolution resolution;
  uint8_t flags;          // kWrite
  uint16_t reserved;

  static constexpr uint8_t kWrite = 1;
  bool write() const { return flags & kWrite; }
};
static_assert(sizeof(FaultRecord) == 40, "trace record layout is part of the file format");
static_assert(offsetof(FaultRecord, resolution) == 36, "trace record layout is part of the file format");

}  // namespace uffdlazy
