// The shim's own signals (a checkpoint's stop signal, and its trigger) can land on a program thread
// that is blocked in a system call, which then fails with EINTR although the program asked for no
// such thing. Their handlers count each delivery per thread, so that the interposers of blocking
// calls (preload/signal_interposers.cpp) can tell such an interruption from one by the program's
// own signals, and wait on.
#pragma once

#include <cstdint>

namespace uffdlazy {

// In the shim's handlers (async-signal-safe).
void count_shim_signal();
// Deliveries of the shim's signals to the calling thread so far.
uint32_t shim_signals_of_this_thread();

}  // namespace uffdlazy
