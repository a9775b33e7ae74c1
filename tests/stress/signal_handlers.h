// The SIGUSR1 handler other threads trigger (it maps, touches, drops and unmaps memory on whatever
// thread it interrupts), and a crash reporter for SIGSEGV/SIGBUS that says what the thread was doing.
#pragma once

#include "tests/stress/worker.h"

namespace stress {

void install_signal_handlers();

// Per thread, before SIGUSR1 is unblocked: the handler's arena and an alternate stack for crashes.
bool prepare_thread_for_signals(Worker& w);
// Per thread, with SIGUSR1 blocked again: the arena must hold what the handlers last wrote.
void finish_thread_signals(Worker& w);

}  // namespace stress
