// Shared memory that is not a file: shared anonymous memory and SysV segments. Each object is
// made once, and each of its mappings made from it at its address with its offset: shared
// anonymous memory is mapped whole at a spot in the zone and every mapping is a second mapping of
// it (mremap with old size 0), so they share their pages as they did; a SysV segment is attached
// at that spot and the piece that was mapped moved to its address. The pages are then put in
// place through the mappings like any eager page.
#include <cerrno>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include "tools/restorer/restorer.h"

namespace restorer {

namespace {

inline constexpr uint64_t kSharedAt = kZone + 0x8000000000ull;  // half-way up the zone
inline constexpr uint64_t kSysvAt = kZone + 0xc000000000ull;
// Each SysV segment is attached here once made and removed (IPC_RMID) at once, so that it never
// outlives the resume, whatever happens; the hold goes once its mappings are made.
inline constexpr uint64_t kSysvHold = kZone + 0xd000000000ull;
uint64_t g_hold_next = kSysvHold;
uint64_t g_anon_object = ~0ull;  // the object mapped at kSharedAt now (shared anonymous)

}  // namespace

void shared_memory_object(uint32_t i, const snap::ObjectRecord& o) {
  if (o.shm.sysv_key == -1) return;  // shared anonymous memory: made with its first mapping
  const long id = sys::call6(SYS_shmget, 0 /* IPC_PRIVATE */, long(o.shm.size), IPC_CREAT | 0600);
  const long hold = id >= 0 ? sys::call6(SYS_shmat, id, long(g_hold_next), 0) : id;
  if (id >= 0) sys::call6(SYS_shmctl, id, IPC_RMID, 0);
  if (hold != long(g_hold_next)) {
    Line l;
    resume_line(l).s("cannot make a SysV shared memory segment of ").u(o.shm.size).s(" bytes again: ").err(hold < 0 ? hold : -ENOMEM);
    refuse_objects(l);
  }
  g_hold_next += (o.shm.size + 0xfffff) & ~0xfffffull;
  g_made[i].fd = int(id);
  g_made[i].sysv_held = true;
}

long map_shared(const snap::MappingRecord& m) {
  const uint32_t index = m.object - 1;
  const snap::ObjectRecord& o = g_image.object(index);
  const uint64_t len = m.end - m.start;
  if (o.shm.sysv_key == -1) {
    if (g_anon_object != index) {
      if (g_anon_object != ~0ull) {
        const snap::ObjectRecord& old = g_image.object(uint32_t(g_anon_object));
        sys::munmap(reinterpret_cast<void*>(kSharedAt), old.shm.size);
      }
      const long r = sys::mmap(reinterpret_cast<void*>(kSharedAt), o.shm.size, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (r != long(kSharedAt)) return r < 0 ? r : -ENOMEM;
      g_anon_object = index;
    }
    return sys::mremap(reinterpret_cast<void*>(kSharedAt + m.offset), 0, len, MREMAP_MAYMOVE | MREMAP_FIXED,
                       reinterpret_cast<void*>(m.start));
  }
  const long at = sys::call6(SYS_shmat, g_made[index].fd, long(kSysvAt), 0);
  if (at != long(kSysvAt)) return at < 0 ? at : -ENOMEM;
  const long r = sys::mremap(reinterpret_cast<void*>(kSysvAt + m.offset), len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
                             reinterpret_cast<void*>(m.start));
  // What was not moved goes (the segment stays attached where it was mapped).
  if (m.offset) sys::munmap(reinterpret_cast<void*>(kSysvAt), m.offset);
  if (m.offset + len < o.shm.size) {
    sys::munmap(reinterpret_cast<void*>(kSysvAt + m.offset + len), o.shm.size - m.offset - len);
  }
  return r;
}

void release_shared_memory() {
  if (g_anon_object != ~0ull) {
    sys::munmap(reinterpret_cast<void*>(kSharedAt), g_image.object(uint32_t(g_anon_object)).shm.size);
    g_anon_object = ~0ull;
  }
  // The holds of the SysV segments go: each lives on in its mappings.
  uint64_t at = kSysvHold;
  for (uint32_t i = 0; i < g_image.object_count; i++) {
    const snap::ObjectRecord& o = g_image.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kSharedMemory) || o.shm.sysv_key == -1 || !g_made[i].sysv_held) continue;
    sys::call6(SYS_shmdt, long(at));
    at += (o.shm.size + 0xfffff) & ~0xfffffull;
  }
}

}  // namespace restorer
