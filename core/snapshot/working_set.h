// The working set of a restore: the snapshot pages a restored run touched, in the order it first
// touched them, kept in a sidecar file next to the snapshot (FORMAT.md, "Working-set file").
//
//   record:  WorkingSetLog log; log.init(owed pages);   monitor setup: s.touches = &log;
//            at exit: log.write(path, snapshot reader)
//   replay:  WorkingSetReader ws; ws.open(path, snapshot reader);
//            monitor setup: s.working_set = ws.runs(), s.working_set_runs = ws.run_count()
//
// A working set names pages by snapshot region index and page number, so it belongs to one
// snapshot file: it carries that file's header checksum (which covers, through the section table,
// every index checksum), size and capture time, and a reader refuses it for any other snapshot.
//
// Raw system calls only; memory comes from anonymous mappings made aside, never from the heap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/line_writer.h"
#include "core/monitor/page_source.h"
#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy::snap {

inline constexpr char kWsMagic[8] = {'U', 'F', 'F', 'D', 'W', 'S', 'E', 'T'};
inline constexpr uint16_t kWsVersionMajor = 1;
inline constexpr uint16_t kWsVersionMinor = 0;

struct WorkingSetHeader {
  char magic[8];
  uint16_t version_major;
  uint16_t version_minor;
  uint32_t header_size;        // bytes before the first run record (96 in 1.0)
  uint64_t checksum;           // XXH3-64 of the whole file with these 8 bytes taken as zero
  uint64_t file_size;
  uint32_t page_size;
  uint32_t run_size;           // bytes per run record (16 in 1.0)
  uint64_t run_count;
  uint64_t page_count;         // pages in all runs together
  uint64_t snapshot_header_checksum;  // the snapshot's header_checksum
  uint64_t snapshot_file_size;
  uint64_t snapshot_created_ns;
  uint64_t flags;              // bit 0: truncated (the run touched more than the log could hold)
  uint8_t reserved[8];
};
static_assert(sizeof(WorkingSetHeader) == 96);
inline constexpr uint64_t kWsFlagTruncated = 1;

enum class WsError : uint8_t {
  kOk,
  kOpenFailed,   // err says why
  kNotRegularFile,
  kTruncated,    // a = the file's size, b = the size it needs
  kBadMagic,
  kUnsupportedVersion,  // a = major, b = minor
  kChecksum,
  kForeign,      // recorded from another snapshot
  kMalformed,    // what says which field
  kNoMemory,
  kWrite,        // writing failed; err says why
};

struct WsStatus {
  WsError error = WsError::kOk;
  int err = 0;
  uint64_t a = 0, b = 0;
  const char* what = nullptr;
  bool ok() const { return error == WsError::kOk; }
};

// Appends the problem, e.g. "recorded from another snapshot than /tmp/a.snap (...)".
void describe(const WsStatus& s, const char* snapshot_path, LineWriter& out);

class WorkingSetReader {
 public:
  WorkingSetReader() = default;
  ~WorkingSetReader() { close(); }
  WorkingSetReader(const WorkingSetReader&) = delete;
  WorkingSetReader& operator=(const WorkingSetReader&) = delete;

  // Reads and checks the file against `snapshot` (open): every run must lie inside one of its
  // regions.
  WsStatus open(const char* path, const SnapshotReader& snapshot);
  void close();
  const SourceRun* runs() const { return runs_; }
  uint64_t run_count() const { return run_count_; }
  uint64_t page_count() const { return page_count_; }
  bool truncated() const { return flags_ & kWsFlagTruncated; }

 private:
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  const SourceRun* runs_ = nullptr;
  uint64_t run_count_ = 0;
  uint64_t page_count_ = 0;
  uint64_t flags_ = 0;
};

// The touches of one restored run, appended by the monitor thread (TouchLog), written at exit.
// One contiguous mapping: the file's header, then the runs, so the file is written as it lies.
class WorkingSetLog final : public uffdlazy::TouchLog {
 public:
  // Room for `max_pages` separate runs (the snapshot's owed pages: each can be touched once).
  bool init(uint64_t max_pages, uint32_t page_size);
  void touched(int32_t source, uint64_t page) override;
  // Nothing more is logged (then let the monitor finish what it was doing before write()).
  void freeze() { __atomic_store_n(&frozen_, true, __ATOMIC_RELEASE); }
  uint64_t run_count() const { return __atomic_load_n(&count_, __ATOMIC_ACQUIRE); }
  uint64_t page_count() const { return __atomic_load_n(&pages_, __ATOMIC_RELAXED); }
  const SourceRun* runs() const { return runs_; }

  // Writes what was logged so far to `path` (a temporary file, fsync, rename), for `snapshot`.
  WsStatus write(const char* path, const SnapshotReader& snapshot);

 private:
  uint8_t* mem_ = nullptr;
  size_t mem_size_ = 0;
  SourceRun* runs_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t count_ = 0;  // runs published (the last one may still grow)
  uint64_t pages_ = 0;
  bool truncated_ = false;
  bool frozen_ = false;
  uint32_t page_size_ = 4096;
};

}  // namespace uffdlazy::snap
