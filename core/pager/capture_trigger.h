// When a recording run takes its snapshot: at exit, on a signal, or after a delay.
//
// Signal and delay captures run on a thread of their own (every signal blocked, like the
// monitor), woken by an eventfd that the signal handler writes to: a handler may not clone or
// write files itself, and the program's threads must not be the ones paying for the capture.
#pragma once

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

// For kSignal and kAfter: installs the handler / starts the thread that calls capture().
bool arm_capture(const CaptureMoment& m, void (*capture)());

}  // namespace uffdlazy
