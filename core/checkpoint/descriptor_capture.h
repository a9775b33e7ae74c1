// The descriptors of a checkpoint. Standard input, output and error are the resumer's (not
// recorded); regular files, directories and the harmless character devices (/dev/null, zero,
// full, random, urandom) are reopened by path at resume, at their offset and with their flags
// (O_APPEND kept); the shim's own two (its userfaultfd, its copy of stderr) are made again.
// Pipes, FIFOs, sockets, eventfds, epoll, signalfds, timerfds, inotify, deleted files and memfds
// are objects (object_capture.h) made again at resume. A descriptor that shares its open file
// description with an earlier one (a dup) is recorded as such, and made again as a dup.
// Anything else (io_uring, pidfds, ttys other than 0-2, devices) is refused with the
// descriptor's number and what it is.
#pragma once

#include "core/base/line_writer.h"
#include "core/checkpoint/object_table.h"
#include "core/checkpoint/table_builder.h"

namespace uffdlazy::ckpt {

struct ShimDescriptors {
  int uffd = -1;
  int stderr_copy = -1;
};

bool capture_descriptors(const ShimDescriptors& shim, TableBuilder* table, ObjectTable* objects, LineWriter* why);

}  // namespace uffdlazy::ckpt
