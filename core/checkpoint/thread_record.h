// The kernel's per-thread state a resumed thread needs back, read on the thread itself: the TLS
// base, the address glibc keeps its tid cache at (set_tid_address), the robust futex list, the
// rseq registration (glibc's, or one the program made through syscall(2)), the name, and its
// settings (scheduling, capabilities, ...: process_settings_format.h). Raw system calls only: it
// runs in a signal handler.
#pragma once

#include "core/snapshot/process_format.h"

namespace uffdlazy::ckpt {

void record_this_thread(snap::ThreadRecord* out, snap::ThreadRole role);

}  // namespace uffdlazy::ckpt
