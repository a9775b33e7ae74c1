// Turns the raw return address of an mmap call into an identity that survives ASLR: the module
// (executable or shared library) the address lies in and the offset from that module's load base,
// and counts how many mappings each such site has made (the ordinal).
//
// Modules come from /proc/self/maps, read with raw system calls into a fixed buffer (no loader
// lock, no dl_iterate_phdr, usable inside the interposed mmap): every file-backed executable
// mapping is a range of a module whose load base is (mapping start - file offset). Ranges and
// modules are cached; /proc/self/maps is read again only for an address in no cached range
// (e.g. code of a library dlopen'ed since). Executable mappings that are not files (JIT code, the
// vDSO) are cached too, as ranges of no module, so they do not cause a re-read per call.
//
// A module is (path, base): it keeps its index for the life of the table, so (module, offset)
// keys stay valid across re-reads. At most kMaxModules modules; addresses in further modules are
// unknown (module -1), as are addresses in no executable mapping.
//
// Ordinals: an open-addressing table keyed by (module, offset), preallocated at init.
//
// Threads: every call takes one SpinLock (several threads mmap at once) with every signal blocked
// (a handler that maps memory on the same thread would otherwise deadlock on it). The lock is held
// while /proc/self/maps is read, which touches no registered memory and never waits for the monitor.
//
// Memory: one sys::mmap at init (about 300 KiB of address space, mostly module paths, touched only
// as modules appear, plus 16 bytes per ordinal slot). Nothing comes from the heap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/spin_lock.h"

namespace uffdlazy {

struct SiteId {
  int32_t module = -1;  // index into the table's modules; -1 = unknown
  uint64_t offset = 0;  // address - module base
  bool known() const { return module >= 0; }
};

class CallSiteTable {
 public:
  static constexpr uint32_t kMaxModules = 64;
  static constexpr uint32_t kMaxRanges = 256;
  static constexpr uint32_t kMaxPath = 4095;
  static constexpr uint32_t kDefaultOrdinalSlots = 4096;
  static constexpr uint32_t kNoOrdinal = 0xffffffffu;  // unknown site, or the ordinal table is full

  CallSiteTable() = default;
  ~CallSiteTable() { release(); }
  CallSiteTable(const CallSiteTable&) = delete;
  CallSiteTable& operator=(const CallSiteTable&) = delete;

  // ordinal_slots: rounded up to a power of two; the table takes sites up to 3/4 of it.
  // Returns 0, -EINVAL or -ENOMEM. Calling it again starts over.
  int init(uint32_t ordinal_slots = kDefaultOrdinalSlots);
  void release();
  bool ready() const { return mem_ != nullptr; }

  // Which module `address` lies in, and where.
  SiteId resolve(uintptr_t address);
  // The number of mappings `site` made before this one (0 for the first), counting this one.
  // kNoOrdinal for an unknown site or when the table is full.
  uint32_t next_ordinal(SiteId site);
  // The count so far, without counting anything.
  uint32_t ordinal_count(SiteId site);
  // resolve() and next_ordinal() under one hold of the lock: what mapped() calls with the caller.
  SiteId record(const void* caller, uint32_t* ordinal);

  // Modules found so far; a module's fields never change once it is listed.
  uint32_t module_count() const { return __atomic_load_n(&module_count_, __ATOMIC_ACQUIRE); }
  const char* module_path(int32_t m) const;  // NUL-terminated; "" when m is out of range
  uint32_t module_path_length(int32_t m) const;
  uintptr_t module_base(int32_t m) const;
  uint64_t maps_reads() const { return __atomic_load_n(&maps_reads_, __ATOMIC_RELAXED); }
  uint32_t ordinal_sites() const { return ordinal_used_; }

  // A site packed in Region::site's 64 bits: module + 1 in the top 16 bits, the offset below
  // (offsets are < 2^48). 0 = unknown.
  static uint64_t pack(SiteId s) {
    return s.known() && s.offset < (uint64_t(1) << 48) ? (uint64_t(s.module + 1) << 48) | s.offset : 0;
  }
  static SiteId unpack(uint64_t v) {
    return v ? SiteId{int32_t(v >> 48) - 1, v & ((uint64_t(1) << 48) - 1)} : SiteId{};
  }

  // In a forked child: a lock some vanished thread held is free again.
  void reset_after_fork() { lock_.reset_after_fork(); }

 private:
  struct Module {
    uintptr_t base;
    uint32_t path_length;
    char path[kMaxPath + 1];
  };
  struct Range {
    uintptr_t start;
    uintptr_t end;  // exclusive
    int32_t module;  // -1: executable but not a module we track
  };
  struct OrdinalSlot {
    uint64_t offset;
    uint32_t module_plus_1;  // 0 = empty
    uint32_t count;
  };

  const Range* find_range(uintptr_t address) const;
  SiteId resolve_locked(uintptr_t address);
  uint32_t* ordinal_slot(SiteId site, bool insert);
  void read_maps();
  void parse_line(const char* line, size_t n);
  int32_t module_for(const char* path, size_t n, uintptr_t base);

  SpinLock lock_;
  void* mem_ = nullptr;
  size_t mem_size_ = 0;
  Module* modules_ = nullptr;
  uint32_t module_count_ = 0;
  Range* ranges_ = nullptr;
  uint32_t range_count_ = 0;
  OrdinalSlot* slots_ = nullptr;
  uint32_t slot_mask_ = 0;
  uint32_t ordinal_used_ = 0;
  char* buf_ = nullptr;  // for reading /proc/self/maps
  uint64_t maps_reads_ = 0;
};

}  // namespace uffdlazy
