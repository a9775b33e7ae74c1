// Stopping every thread of the process for a checkpoint, from the inside, and letting them go.
//
// Program threads are stopped by a signal of the shim's own (kStopSignal), sent to each with
// tgkill: the handler records the thread's kernel state (thread_record.h), marks a save point
// (jump_context.h) and parks on a futex. The shim's monitor parks at a quiet point of its loop
// instead (it blocks every signal); the checkpoint thread itself is the one doing the work.
//
// In a resumed process every thread arrives at its save point again, from the restorer:
// program threads then return from the handler (the kernel's signal frame brings back their
// registers, signal mask and alternate stack), the monitor continues its loop with a new
// userfaultfd, the checkpoint thread finishes the hand-over (checkpoint.cpp).
#pragma once

#include <cstdint>

#include "core/base/line_writer.h"
#include "core/snapshot/process_format.h"

namespace uffdlazy {
class Monitor;
}

namespace uffdlazy::ckpt {

// SIGRTMIN + 4 as glibc numbers it (glibc keeps 32 and 33 for itself).
inline constexpr int kStopSignal = 38;
inline constexpr uint32_t kMaxThreads = 4096;

// Whether a checkpoint is armed in this process: the stop signal is then the shim's, and the
// program may neither take it over nor block it (preload/signal_interposers.cpp).
bool stop_signal_reserved();

// Installs the stop handler (SA_SIGINFO | SA_RESTART, every signal blocked while it runs) and
// maps the thread records. Call once, before any checkpoint.
bool prepare_thread_stop();

// Stops every program thread (skipping the shim's hidden threads), within `timeout_ns`. On
// failure every thread already stopped is released, the reason is appended to `why` and false
// is returned.
bool stop_program_threads(uint64_t timeout_ns, LineWriter* why);
// Parks the monitor (after the program's threads: it serves their faults until they stop).
bool park_monitor(Monitor* monitor, uint64_t timeout_ns, LineWriter* why);
// Records the calling (checkpoint) thread; its save point is marked by the caller.
snap::ThreadRecord* record_checkpoint_thread();
// Lets every stopped thread go on (continue mode, or a failed checkpoint).
void release_threads();

// The records of every stopped thread, the checkpoint thread's last.
uint32_t thread_count();
const snap::ThreadRecord* thread_records();
bool leader_stopped();

// In the monitor's save point, once resumed: what the monitor does before it serves again.
// Set by the checkpoint (checkpoint.cpp).
void set_monitor_resumed_hook(void (*hook)());
// A program thread arrived at its save point in a resumed process (it has left the restorer).
void program_thread_resumed();

}  // namespace uffdlazy::ckpt
