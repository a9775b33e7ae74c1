// The address space of a checkpoint: every mapping from /proc/self/smaps becomes a MappingRecord,
// and the memory worth storing becomes a plan of regions for the image writer.
//
// Lazy at resume is what the shim had registered and its region table knows: each such table
// region becomes one stored region (so the resumed monitor maps its table entries one to one onto
// the image), and its mappings are flagged kMappingLazy. So is any other private anonymous
// mapping of at least `lazy_min_bytes` that the program made without the shim seeing it (glibc's
// malloc: the brk heap, its arenas and large blocks), unless it is the shim's own memory, a stack
// that grows down, a reservation (PROT_NONE), or holds an address pinned below: the resumed
// monitor adds those to its table. Everything else that is private is stored eagerly: smaller
// anonymous memory, stacks, TLS, the shim's own memory, and the pages of private file mappings
// the process changed.
//
// Shared memory that is not a file (shared anonymous memory, SysV segments removed with
// IPC_RMID) is an object of its own (shared_mapping_capture.cpp) whose pages are stored eagerly as
// the regions of its mappings; mappings of deleted files and memfds map the object made again
// from the image (captured with the descriptor that opens it, or from the mappings themselves).
// MADV_DONTFORK / MADV_WIPEONFORK are noted and applied again at resume.
//
// Refused: SysV segments still reachable by key or id, mappings of replaced files, special
// mappings other than the vDSO's, hugetlb, I/O mappings, and anything inside the restorer's zone.
#pragma once

#include <cstdint>

#include "core/base/line_writer.h"
#include "core/base/spin_lock.h"
#include "core/checkpoint/object_table.h"
#include "core/checkpoint/table_builder.h"
#include "core/monitor/region_table.h"
#include "core/snapshot/process_format.h"

namespace uffdlazy::ckpt {

struct PlannedRegion {
  uint64_t start, end;
  uint32_t prot;
  uint32_t map_flags;
  uint32_t lazy;         // served by the monitor after a resume: 1 a table region, 2 memory the
                         // shim did not register (the resumed monitor adds it to its table)
  uint32_t file;         // private file mapping: only pages the process changed are stored
  int32_t source;        // lazy: the table region's source (pages a resumed process still owes)
  uint32_t shared;       // shared memory (kShared): its pages are those its object holds, not
                         // only those mapped in this process (mincore, not pagemap)
  uint64_t source_page;
};

struct MappingInput {
  const RegionTable* table = nullptr;
  SpinLock* table_lock = nullptr;
  uint64_t page_size = 4096;
  // [start, end) pairs of the shim's own mappings left out of the image (its view of an image
  // it serves from): the resumed shim maps what it needs again.
  const uint64_t* skip = nullptr;
  uint32_t skip_pairs = 0;
  // [start, end) pairs mapped again at resume but never stored (the shim's scratch for writing).
  const uint64_t* empty = nullptr;
  uint32_t empty_pairs = 0;
  // Addresses the restorer writes (or has the kernel write) before the monitor serves: each
  // thread's tid cache and rseq area. A table region holding one is stored eagerly instead.
  const uint64_t* pinned = nullptr;
  uint32_t pinned_count = 0;
  uint64_t lazy_min_bytes = 0;  // 0: only the table's regions are lazy
  // Deleted files and memfds found through descriptors already; those only mapped are added, as
  // is shared memory.
  ObjectTable* objects = nullptr;
  bool uffd_tracks_writes = false;  // the shim registers its ranges for write-protect too
};

// Maps the scratch space (once).
bool prepare_mapping_capture();
// Fills `mappings`, the plan, and the vDSO fields of `proc`. False (with why) on a refusal.
bool capture_mappings(const MappingInput& in, TableBuilder* mappings, snap::ProcessRecord* proc, LineWriter* why);

uint32_t planned_region_count();
const PlannedRegion* planned_regions();

// Around the clone of the image writer: MADV_DONTFORK and MADV_WIPEONFORK memory is made
// inheritable for the clone (off), then marked again (on); the program's threads are stopped.
void set_fork_advice(const TableBuilder& mappings, bool on);

}  // namespace uffdlazy::ckpt
