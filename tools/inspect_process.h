// What `inspect` and `verify` add for a process image (uffdlazy checkpoint): the process, its
// threads, mappings and descriptors.
#pragma once

#include "core/snapshot/process_image.h"
#include "core/snapshot/snapshot_reader.h"

namespace uffdlazy::cli {

void print_process_text(const snap::SnapshotReader& reader, const snap::ProcessImage& image);
// A JSON member `"process":{...}` (without a leading comma).
void print_process_json(const snap::SnapshotReader& reader, const snap::ProcessImage& image);

}  // namespace uffdlazy::cli
