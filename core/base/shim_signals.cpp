#include "core/base/shim_signals.h"

namespace uffdlazy {

namespace {
// initial-exec: read in signal handlers, and by threads glibc never saw start.
__thread uint32_t t_shim_signals __attribute__((tls_model("initial-exec"))) = 0;
}  // namespace

void count_shim_signal() { t_shim_signals = t_shim_signals + 1; }
uint32_t shim_signals_of_this_thread() { return t_shim_signals; }

}  // namespace uffdlazy
