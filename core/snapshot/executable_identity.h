// Who a module is: its path and the strongest identifier we can read without a loader, the GNU
// build-id from the ELF notes (or a hash of the file when it has none). The snapshot stores it
// for the executable, to refuse foreign snapshots, and for each allocation call site's module,
// so a region can be found again after ASLR moved everything.
//
// Everything here is raw system calls on fixed buffers, so it runs on the monitor thread and in a
// forked child. A ModuleIdentity is about 4.2 KiB: keep it in static storage or a mapping when
// stack is tight.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/snapshot/format.h"

namespace uffdlazy::snap {

struct ModuleIdentity {
  char path[kMaxPathLength + 1];  // NUL-terminated
  uint32_t path_length = 0;
  IdKind id_kind = IdKind::kNone;
  uint32_t id_length = 0;
  uint8_t id[kMaxIdLength];

  bool has_id() const { return id_kind != IdKind::kNone && id_length > 0; }
  bool set_path(const char* p, size_t n);  // false (and empty) when too long
};

// Fills out->path and reads the identity of the file at `path`. When the ELF file carries no
// build-id note and `hash_fallback` is set, the id is the XXH3-64 of the whole file.
// Returns 0, or -errno (ENOEXEC when the file is not a readable ELF image; out->path is still set).
int read_module_identity(const char* path, ModuleIdentity* out, bool hash_fallback = true);

// The same for the running executable, found through /proc/self/exe.
int read_executable_identity(ModuleIdentity* out, bool hash_fallback = true);

// Only the GNU build-id: returns its length (0 when there is none), or -errno. `id` gets up to
// kMaxIdLength bytes.
long read_gnu_build_id(int fd, uint8_t id[kMaxIdLength]);

// Same build-id when both have one, else same path.
bool same_module(const ModuleIdentity& a, const ModuleIdentity& b);

}  // namespace uffdlazy::snap
