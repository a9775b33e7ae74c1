// The descriptors of a checkpoint. Standard input, output and error are the resumer's (not
// recorded); regular files, directories and the harmless character devices (/dev/null, zero,
// full, random, urandom) are reopened by path at resume, at their offset and with their flags
// (O_APPEND kept); the shim's own two (its userfaultfd, its copy of stderr) are made again.
// Anything else (pipes, sockets, eventfds, epoll, timerfds, signalfds, inotify, io_uring, pidfds,
// ttys, deleted files) is refused with the descriptor's number and what it is.
#pragma once

#include "core/base/line_writer.h"
#include "core/checkpoint/table_builder.h"

namespace uffdlazy::ckpt {

struct ShimDescriptors {
  int uffd = -1;
  int stderr_copy = -1;
};

bool capture_descriptors(const ShimDescriptors& shim, TableBuilder* table, LineWriter* why);

}  // namespace uffdlazy::ckpt
