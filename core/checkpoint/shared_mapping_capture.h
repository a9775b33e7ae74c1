// The objects behind mappings that are not plain files (mapping_capture.cpp asks, VMA by VMA):
//   - shared anonymous memory ("/dev/zero (deleted)") and SysV segments ("/SYSVKEY (deleted)"),
//     one kSharedMemory object each, by inode (a SysV segment's inode is its id); a segment not
//     removed with IPC_RMID is refused (its key and id could not be given back);
//   - deleted files and memfds: the object their descriptor made, or one of their own when only
//     mapped, whose contents are then read through its mappings (fill_mapped_files): page by page
//     from a mapping that shows the file's page (not one the process changed in a private
//     mapping; such a page is zeros in the file made again), up to the first page beyond the
//     file's end (process_vm_readv answers EFAULT there, where a read would be SIGBUS).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/line_writer.h"
#include "core/checkpoint/object_table.h"

namespace uffdlazy::ckpt {

struct MappedVma {
  uint64_t start, end, offset, dev, ino;
  const char* path;  // as /proc/self/maps names it, " (deleted)" removed
  size_t path_length;
  bool is_private;
};

// Each returns the object's index, or -1 with why.
long shared_memory_object(ObjectTable* objects, const MappedVma& v, LineWriter* why);
long mapped_file_object(ObjectTable* objects, const MappedVma& v, LineWriter* why);

void reset_mapped_files();
// After every VMA: the contents of the deleted files and memfds that are only mapped.
bool fill_mapped_files(ObjectTable* objects, LineWriter* why);

}  // namespace uffdlazy::ckpt
