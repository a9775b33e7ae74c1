// Writes a process image from a child cloned at the checkpoint: the child holds a copy-on-write
// copy of the whole address space as it was with every thread stopped, so the program can go on
// (continue mode) the moment the clone returns. The child writes the planned regions (pages
// present in memory; in a process that was itself resumed lazily, the pages it still owes come
// from the image it was resumed from), then the four process sections, through the snapshot
// writer (temporary file, fsync, rename: crash-safe), mode 0600.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/checkpoint/mapping_capture.h"
#include "core/monitor/page_source.h"

namespace uffdlazy::snap {
class SnapshotPageSource;
}

namespace uffdlazy::ckpt {

struct ImageInput {
  const char* path = nullptr;
  const char* executable = nullptr;  // the program's executable file (identity in the header)
  const void* sections[4] = {};     // process, threads, mappings, descriptors
  size_t lengths[4] = {};
  const PlannedRegion* plan = nullptr;
  uint32_t plan_count = 0;
  uint64_t page_size = 4096;
  // Pages a resumed process has not been served yet: still owed by this source.
  const snap::SnapshotPageSource* owed = nullptr;
  uint32_t thread_count = 0;
  uint32_t mapping_count = 0;
  int message_fd = 2;
};

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
