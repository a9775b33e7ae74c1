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

// Opens the image behind descriptor `fd` of the calling thread's table. False (with why) if it
// cannot be read or is not a process image.
bool open_resume_source(int fd, bool verify_pages, LineWriter* why);
// After open: the image and its process sections.
const snap::SnapshotReader* resume_reader();
const snap::ProcessImage* resume_image();
// Makes the page source (lazy resume); nullptr if it cannot be mapped.
snap::SnapshotPageSource* start_resume_source(bool verify_pages);
// Lets go of the image (eager resume: nothing is owed).
void close_resume_source();

// The page source of a lazily resumed process, or nullptr.
const snap::SnapshotPageSource* resume_source();
// Where the image is mapped: the shim's own view, left out of a later checkpoint.
bool resume_source_range(uint64_t* start, uint64_t* end);

}  // namespace uffdlazy::ckpt
