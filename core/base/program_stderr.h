// The program's standard error, for a shim thread that keeps a descriptor table of its own.
//
// The monitor holds no descriptor but its userfaultfd (see Monitor), so that it never keeps a
// program's file open behind its back. To report a fatal problem it borrows the program's current
// fd 2 for the one write (pidfd_getfd on its own process: no privilege needed), then lets it go.
#pragma once

#include "core/base/line_writer.h"

namespace uffdlazy {

// Writes the line to the program's fd 2 (whatever it is now; nothing if it is closed).
void emit_to_program_stderr(LineWriter& w);

}  // namespace uffdlazy
