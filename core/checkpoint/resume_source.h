// The image a lazily resumed process is served from: its reader (a private mapping of the file),
// its process sections, and the page source the monitor serves faults from. Opened by the monitor
// of the resumed process, through its own descriptor table; lives for the rest of the process.
#pragma once

#include <cstdint>

#include "core/base/line_writer.h"
#include "core/snapshot/process_image.h"
#include "core/snapshot/snapshot_page_source.h"
#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy::ckpt {

// Opens the image behind descriptor `fd` of the calling thread's table, and the images it builds
// on (an incremental image). False (with why) if it cannot be read, is not a process image, or an
// ancestor is missing or was replaced.
bool open_resume_source(int fd, bool verify_pages, LineWriter* why);
// Where the image was opened from (an absolute path, "" if /proc could not tell).
const char* resume_image_path();
// After open: the image and its process sections.
const snap::SnapshotReader* resume_reader();
const snap::ProcessImage* resume_image();
// Makes the page source (lazy resume); nullptr if it cannot be mapped.
snap::SnapshotPageSource* start_resume_source(bool verify_pages);
// Lets go of the image (eager resume: nothing is owed).
void close_resume_source();

// The page source of a lazily resumed process, or nullptr.
const snap::SnapshotPageSource* resume_source();
// Where the image (and the images it builds on, and the reader's copies of their tables) is
// mapped: the shim's own view, left out of a later checkpoint. [start, end) pairs; returns how
// many (at most snap::SnapshotReader::kMaxMappings).
uint32_t resume_source_ranges(uint64_t* pairs, uint32_t max);

}  // namespace uffdlazy::ckpt
