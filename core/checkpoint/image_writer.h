// Writes a process image from a child cloned at the checkpoint: the child holds a copy-on-write
// copy of the whole address space as it was with every thread stopped, so the program can go on
// (continue mode) the moment the clone returns. The child writes the planned regions (pages
// present in memory; in a process that was itself resumed lazily, the pages it still owes come
// from the image it was resumed from), then the four process sections, through the snapshot
// writer (temporary file, fsync, rename: crash-safe), mode 0600.
//
// Region order: every lazy region first (even one with nothing stored), in plan order, then the
// eager ones that hold something. So the k-th lazy planned region is region k of the image.
//
// An incremental image (`base` set): a page of a lazy table region that is still owed, or that
// the kernel saw no write to since it was installed from (or protected at) the base image (the
// `unchanged` ranges, from PAGEMAP_SCAN), is left in the base image: its entry there is referred
// to (core/snapshot/format.h kParent), and the base and its own ancestors become the image's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/pagemap_scan.h"
#include "core/checkpoint/mapping_capture.h"
#include "core/monitor/page_source.h"
#include "core/snapshot/snapshot_writer.h"

namespace uffdlazy::snap {
class SnapshotPageSource;
class SnapshotReader;
}

namespace uffdlazy::ckpt {

struct ImageInput {
  const char* path = nullptr;
  const char* executable = nullptr;  // the program's executable file (identity in the header)
  // process, threads, mappings, descriptors, objects, object data (process_format.h)
  static constexpr int kSections = 6;
  const void* sections[kSections] = {};
  size_t lengths[kSections] = {};
  const PlannedRegion* plan = nullptr;
  uint32_t plan_count = 0;
  uint64_t page_size = 4096;
  // Pages a resumed process has not been served yet: still owed by this source.
  const snap::SnapshotPageSource* owed = nullptr;
  uint32_t thread_count = 0;          // every thread record, the shim's own among them
  uint32_t program_thread_count = 0;  // the program's threads (what the user counts)
  uint32_t mapping_count = 0;
  int message_fd = 2;
  uint64_t started_ns = 0;  // CLOCK_MONOTONIC when the checkpoint began (the line says how long)
  // Incremental: the image the lazy table regions' sources (PlannedRegion::source) refer to, its
  // ancestry (itself first), and the page ranges of those regions not written since (sorted).
  const snap::SnapshotReader* base = nullptr;
  const snap::AncestorInfo* ancestors = nullptr;
  uint32_t ancestor_count = 0;
  const pagemap::Range* unchanged = nullptr;
  uint64_t unchanged_count = 0;
};

// The image region the plan's lazy region `i` becomes (the image writer's order), or -1 when
// plan[i] is not lazy.
long lazy_image_region(const PlannedRegion* plan, uint32_t i);

// Maps the writer's arena (its state and stack), once.
bool prepare_image_writer();
// The arena: mapped in the image but never stored (the writer changes it while it writes).
void image_writer_arena(uint64_t* start, uint64_t* end);
// Clones the writer; returns its pid or -errno.
long start_image_writer(const ImageInput& in);
// Waits for it: its exit status (0: the image is complete under its final name), or -errno. When
// it failed, its temporary file is removed (and if it was killed, a line says so).
int wait_image_writer(long pid, const ImageInput& in);

}  // namespace uffdlazy::ckpt
