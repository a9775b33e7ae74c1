// The settings a checkpoint keeps besides memory, threads and descriptors
// (core/snapshot/process_settings_format.h), and the ones it refuses because no resume could bring
// them back: core dumps restricted to root (dumpable 2), a restartable-sequence area registered
// behind the shim's back, a core-scheduling cookie, threads whose credentials differ from the main
// thread's. Each thread reads its own settings in its stop handler (thread_record.cpp); the rest
// is read here by the checkpoint thread, once every program thread is stopped.
#pragma once

#include <cstdint>

#include "core/base/line_writer.h"
#include "core/checkpoint/table_builder.h"
#include "core/snapshot/process_format.h"

namespace uffdlazy::ckpt {

// Maps the scratch memory of the capture. Call once, before any checkpoint.
bool prepare_settings_capture();

// Fills p->settings (and the credentials of p, as the main thread has them) from the stopped
// process; `threads` are the records of every stopped thread. False (with why) when the process
// holds a setting no resume can restore.
bool capture_settings(TableBuilder* process_table, snap::ProcessRecord* p, const snap::ThreadRecord* threads,
                      uint32_t thread_count, LineWriter* why);

// The leases the program holds on its descriptors (DescriptorRecord::lease). False (with why) for
// a lease on a descriptor a resume does not reopen by name.
bool capture_leases(TableBuilder* descriptors, LineWriter* why);

// What syscall(2) tells the shim (preload/process_interposers.cpp): registrations the kernel
// cannot be asked about afterwards.
void note_rseq(long area, long length, long flags, long signature, long result);
void note_membarrier(long command, long flags, long result);

// The restartable-sequence area the calling thread registered itself through syscall(2), if any.
bool program_rseq_of_this_thread(uint64_t* area, uint32_t* length, uint32_t* signature);

}  // namespace uffdlazy::ckpt
