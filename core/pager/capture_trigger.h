// When a recording run takes its snapshot: at exit, on a signal, or after a delay.
//
// Signal and delay captures run on a thread of their own (every signal blocked, like the
// monitor), woken by an eventfd that the signal handler writes to: a handler may not clone or
// write files itself, and the program's threads must not be the ones paying for the capture.
#pragma once

#include <csignal>
#include <cstdint>

#include "core/base/line_writer.h"

namespace uffdlazy {

struct CaptureMoment {
  enum Kind { kExit, kSignal, kAfter } kind = kExit;
  int signal = 0;
  uint64_t after_ns = 0;
};

// Parses "exit", "signal=NAME" (USR1, SIGUSR2, HUP, ... or a number) or "after=SECONDS"
// (decimals allowed). On error appends what is accepted to err.
bool parse_capture_moment(const char* spec, CaptureMoment* out, LineWriter* err);

// "SIGUSR2", or "signal N".
void append_signal_name(LineWriter* w, int sig);

// For kSignal and kAfter: installs the handler / starts the thread that calls capture().
// With `keep_signal` (a checkpoint's trigger) the signal stays the shim's whatever the program
// does with its masks: the capture thread, which otherwise blocks every signal, leaves it
// unblocked, so a signal every program thread blocks still reaches it. The program's own view of
// the signal's disposition is then kept apart (capture_signal_view); should the program take the
// signal for itself (a handler, sigwait, signalfd), release_capture_signal() gives it up.
bool arm_capture(const CaptureMoment& m, void (*capture)(), bool keep_signal = false);

// The signal the shim keeps (keep_signal above, not released, in the process that armed it),
// or 0.
int capture_signal();
// What the program last asked for that signal: SIG_DFL or SIG_IGN (at first, what it inherited).
struct sigaction* capture_signal_view();
// The program takes the signal: from here on the capture thread blocks it (this waits until it
// does, so that no program handler ever runs on the shim's thread). Its view becomes the
// disposition again.
void release_capture_signal();
// In a forked child: there is no capture thread; a kept signal is given back with the program's
// view (false: none was kept).
bool capture_forked();

}  // namespace uffdlazy
