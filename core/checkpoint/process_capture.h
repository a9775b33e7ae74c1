// The process-wide kernel state of a checkpoint (everything in ProcessRecord but the mappings and
// the shim's hand-over fields), and the refusals that follow from it: seccomp, running child processes
// (zombies are objects: child_capture.h), a shadow stack. A deleted working directory is an object (made again unnamed at resume).
#pragma once

#include "core/base/line_writer.h"
#include "core/checkpoint/object_table.h"
#include "core/checkpoint/table_builder.h"
#include "core/snapshot/process_format.h"

namespace uffdlazy::ckpt {

// Adds the one process record to `table` and fills it; false (with why) when the process
// cannot be checkpointed.
snap::ProcessRecord* capture_process(TableBuilder* table, ObjectTable* objects, LineWriter* why);

// Appends the pids of the process's children (of every thread), separated by spaces; false if it
// has none.
bool list_child_processes(LineWriter* pids);

}  // namespace uffdlazy::ckpt
