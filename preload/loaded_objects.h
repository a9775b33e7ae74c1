// The objects the loader has mapped (executable, libraries, the vDSO) and the anonymous part of
// each: the .bss beyond its file-backed data, which nobody maps through libc (the kernel maps the
// executable's, ld.so the libraries' with its own private mmap).
//
// ld.so, libc and the shim itself are never the program's memory to page: the monitor and the
// hooks run on their data (a fault there would wait for the monitor that is taking it).
#pragma once

#include <cstddef>

namespace uffdlazy {

// Once, in the constructor: finds ld.so, libc and the shim, and tells the pager of the shim's own
// writable memory. False if libc cannot be found.
bool init_loaded_objects();

// Registers what the program had before the shim could see it mapped: the .bss of every object
// loaded at start and the brk heap.
void adopt_startup_memory();

// Registers the .bss of objects loaded since (called by the loader hook after each change).
void adopt_new_objects();

// The address of ld.so's r_debug (for the loader hook), or null.
void* loader_debug_state();

}  // namespace uffdlazy
