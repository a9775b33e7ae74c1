// `uffdlazy checkpoint`: the whole process written to an image at the chosen moment, from inside.
//
// On the checkpoint thread (the capture trigger's): stop every program thread, then the monitor;
// record the process, its mappings and descriptors (refusing what a resume could not bring back);
// mark the checkpoint thread's own save point; clone the writer child. Then either end the
// process (stop) or let every thread go (continue). See thread_stop.h and image_writer.h.
//
// The same function is where the checkpoint thread of a resumed process arrives, from the
// restorer: it then finishes the hand-over (resume_protocol.h) and returns to its trigger loop,
// so the resumed process can be checkpointed again.
#pragma once

#include <cstdint>

#include "core/base/spin_lock.h"
#include "core/checkpoint/resume_protocol.h"
#include "core/monitor/region_table.h"

namespace uffdlazy {
class Monitor;
class PageSource;
class Userfaultfd;
}

namespace uffdlazy::ckpt {

// What the checkpoint needs from the pager (core/pager/checkpointing.cpp provides it).
struct ShimAccess {
  Monitor* monitor = nullptr;
  RegionTable* table = nullptr;
  SpinLock* table_lock = nullptr;
  uint64_t page_size = 4096;
  uintptr_t doorbell = 0;
  int uffd_fd = -1;
  bool uffd_valid = false;  // the number still names the shim's userfaultfd
  uint64_t uffd_features = 0;
  uint32_t uffd_origin = 0;
  Userfaultfd* uffd = nullptr;  // the shim's (the same object, at the same address, after a resume)
  int stderr_copy = -1;  // the shim's private copy of stderr, or -1
  int message_fd = 2;    // where the checkpoint's own lines go
  uint64_t lazy_min_bytes = 0;  // anonymous memory the shim did not see is lazy from this size
  // A restore source is active (a process started by `uffdlazy restore`): refused for now.
  bool restoring = false;
};

struct Hooks {
  // Fills the pager's current state (at each checkpoint).
  void (*describe)(ShimAccess* out) = nullptr;
  // In a resumed process, on the monitor thread before it serves again: reset the fault account.
  void (*monitor_resumed)() = nullptr;
  // In a resumed process, on the checkpoint thread before any program thread runs: point the
  // pager at the new pid and descriptors (it runs with the main descriptor table).
  void (*pager_resumed)(const ResumeBlock& block) = nullptr;
};

struct Settings {
  const char* path = nullptr;
  bool then_stop = true;
  int trigger_signal = 0;  // the signal that asks for a checkpoint (never raised again at resume)
  // Checkpoints after the first store only the pages changed since the image the process builds
  // on (the one it was resumed from, or the first it wrote), and refer to it for the rest.
  bool incremental = false;
  uint64_t stop_timeout_ns = 2000000000ull;
};

// Installs the stop handler and maps the scratch space. False if that could not be done.
bool arm_checkpoint(const Settings& settings, const Hooks& hooks);
// Takes a checkpoint now (on the checkpoint thread).
void checkpoint_now();
// A checkpoint was asked for, none was written, and this is not a resumed process (for the exit
// status).
bool checkpoint_pending();
// In continue mode the program runs on while its image is written: a program thread that needs
// to know whether an image was written (its exit status, daemon()) waits for that writer first.
// Returns at once when no image is being written.
void wait_while_image_written();

}  // namespace uffdlazy::ckpt
