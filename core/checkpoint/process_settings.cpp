#include "core/checkpoint/process_settings.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <linux/prctl.h>
#include <new>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/proc_file.h"
#include "core/checkpoint/settings_syscalls.h"

namespace uffdlazy::ckpt {

namespace {

constexpr uint32_t kMaxGroups = 65536;  // NGROUPS_MAX

struct Scratch {
  LineReader reader;
  uint32_t groups[kMaxGroups];
};
constinit Scratch* g_scratch = nullptr;

// --- What syscall(2) saw ---

// The rseq areas threads registered themselves, by thread id. A slot is claimed once per id and
// reused when its thread is gone.
struct RseqSlot {
  std::atomic<uint32_t> tid{0};
  uint32_t length = 0;
  uint32_t signature = 0;
  std::atomic<uint64_t> area{0};
};
constexpr uint32_t kRseqSlots = 4096;
constinit RseqSlot g_rseq[kRseqSlots];
constinit std::atomic<bool> g_membarrier_global{false};

bool thread_alive(uint32_t tid) { return sys::call6(SYS_tgkill, sys::getpid(), tid, 0) == 0; }

RseqSlot* rseq_slot(uint32_t tid, bool claim) {
  const uint32_t home = (tid * 2654435761u) % kRseqSlots;
  for (uint32_t i = 0; i < kRseqSlots; i++) {
    RseqSlot& s = g_rseq[(home + i) % kRseqSlots];
    uint32_t t = s.tid.load(std::memory_order_acquire);
    if (t == tid) return &s;
    if (!claim) {
      if (t == 0) return nullptr;
      continue;
    }
    if (t == 0 && s.tid.compare_exchange_strong(t, tid, std::memory_order_acq_rel)) return &s;
  }
  if (!claim) return nullptr;
  // Full: take the slot of a thread that has gone.
  for (uint32_t i = 0; i < kRseqSlots; i++) {
    RseqSlot& s = g_rseq[(home + i) % kRseqSlots];
    uint32_t t = s.tid.load(std::memory_order_acquire);
    if (!thread_alive(t) && s.tid.compare_exchange_strong(t, tid, std::memory_order_acq_rel)) return &s;
  }
  return nullptr;
}

// --- /proc/self/task/TID/status ---

struct Credentials {
  uint32_t uid[4], gid[4];  // real, effective, saved, filesystem
  uint32_t group_count;
  uint64_t groups_hash;
  bool groups_cut;  // more groups than the line reader holds
};

void task_status_path(uint32_t tid, char* path) {
  memcpy(path, "/proc/self/task/", 16);
  size_t n = 16;
  char digits[12];
  size_t k = 0;
  for (uint32_t v = tid; v; v /= 10) digits[k++] = char('0' + v % 10);
  while (k) path[n++] = digits[--k];
  memcpy(path + n, "/status", 8);
}

void parse_ids(const char* line, size_t n, uint32_t* ids) {
  const char* p = line;
  const char* end = line + n;
  while (p < end && *p != ':') p++;
  for (int i = 0; i < 4; i++) {
    while (p < end && (*p < '0' || *p > '9')) p++;
    ids[i] = uint32_t(parse_number(&p, end));
  }
}

// The thread's credentials; with `groups`, its supplementary groups are stored there too.
bool read_credentials(uint32_t tid, Credentials* c, uint32_t* groups) {
  char path[64];
  task_status_path(tid, path);
  *c = Credentials{};
  c->groups_hash = 1469598103934665603ull;
  return g_scratch->reader.for_each(path, [&](const char* line, size_t n) {
    if (starts_with(line, n, "Uid:")) parse_ids(line, n, c->uid);
    if (starts_with(line, n, "Gid:")) parse_ids(line, n, c->gid);
    if (!starts_with(line, n, "Groups:")) return;
    if (n >= LineReader::kLongestLine) c->groups_cut = true;
    const char* p = line + 7;
    const char* end = line + n;
    for (;;) {
      while (p < end && (*p < '0' || *p > '9')) p++;
      if (p >= end) break;
      const uint32_t g = uint32_t(parse_number(&p, end));
      if (groups && c->group_count < kMaxGroups) groups[c->group_count] = g;
      c->group_count++;
      c->groups_hash = (c->groups_hash ^ g) * 1099511628211ull;
    }
  });
}

bool same_credentials(const Credentials& a, const Credentials& b) {
  return !memcmp(a.uid, b.uid, sizeof a.uid) && !memcmp(a.gid, b.gid, sizeof a.gid) &&
         a.group_count == b.group_count && a.groups_hash == b.groups_hash;
}

bool is_program_thread(const snap::ThreadRecord& t) {
  return t.role == uint32_t(snap::ThreadRole::kLeader) || t.role == uint32_t(snap::ThreadRole::kApp);
}

// The membarrier registrations of the process: a private expedited command succeeds only once
// the process registered for it (EPERM before). The global one cannot be asked about.
void read_membarrier(snap::ProcessSettings* s) {
  if (sys::call6(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) < 0) return;
  s->known |= snap::kKnownMembarrier;
  if (sys::call6(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
    s->membarrier |= snap::kMembarrierPrivateExpedited;
  }
  if (sys::call6(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0) {
    s->membarrier |= snap::kMembarrierPrivateExpeditedSyncCore;
  }
  if (sys::call6(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0) {
    s->membarrier |= snap::kMembarrierPrivateExpeditedRseq;
  }
  if (g_membarrier_global.load(std::memory_order_acquire)) s->membarrier |= snap::kMembarrierGlobalExpedited;
}

}  // namespace

bool prepare_settings_capture() {
  if (g_scratch) return true;
  long m = mmap_aside(sizeof(Scratch), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sys::failed(m)) return false;
  g_scratch = new (reinterpret_cast<void*>(m)) Scratch();
  return true;
}

bool capture_settings(TableBuilder* process_table, snap::ProcessRecord* p, const snap::ThreadRecord* threads,
                      uint32_t thread_count, LineWriter* why) {
  snap::ProcessSettings& s = p->settings;
  settings::read_process_settings(&s);
  read_membarrier(&s);
  if (s.dumpable != 0 && s.dumpable != 1) {
    why->str("the process may dump core only as root (dumpable ").u64(s.dumpable)
        .str(", after a set-user-ID program): no process can set that again");
    return false;
  }
  const snap::ThreadRecord* leader = nullptr;
  for (uint32_t i = 0; i < thread_count; i++) {
    if (threads[i].role == uint32_t(snap::ThreadRole::kLeader)) leader = &threads[i];
  }
  if (!leader) {
    why->str("the program's main thread has exited");
    return false;
  }
  // The credentials are the main thread's: glibc keeps every thread's the same, the shim's own
  // threads included, unless a thread changed its own by a raw system call.
  Credentials mine;
  if (!read_credentials(leader->old_tid, &mine, g_scratch->groups)) {
    why->str("cannot read the main thread's credentials");
    return false;
  }
  if (mine.groups_cut || mine.group_count > kMaxGroups) {
    why->str("the process has more supplementary groups than a checkpoint can read (").u64(mine.group_count).str(")");
    return false;
  }
  p->uid = mine.uid[0];
  p->euid = mine.uid[1];
  s.suid = mine.uid[2];
  s.fsuid = mine.uid[3];
  p->gid = mine.gid[0];
  p->egid = mine.gid[1];
  s.sgid = mine.gid[2];
  s.fsgid = mine.gid[3];
  s.group_count = mine.group_count;
  s.groups = process_table->add_string(reinterpret_cast<const char*>(g_scratch->groups), mine.group_count * 4u);
  for (uint32_t i = 0; i < thread_count; i++) {
    const snap::ThreadRecord& t = threads[i];
    if (!is_program_thread(t)) continue;
    if (t.settings.flags & snap::kThreadRseqUnknown) {
      why->str("thread ").u64(t.old_tid)
          .str(" registered a restartable-sequence area by a raw rseq system call (not through libc or syscall(2)): "
               "where it lies cannot be read back");
      return false;
    }
    uint64_t cookie = 0;
    if (settings::prctl(PR_SCHED_CORE, PR_SCHED_CORE_GET, t.old_tid, PR_SCHED_CORE_SCOPE_THREAD, long(&cookie)) == 0 &&
        cookie) {
      why->str("thread ").u64(t.old_tid).str(" has a core-scheduling cookie (PR_SCHED_CORE): it cannot be made again");
      return false;
    }
    if (&t == leader) continue;
    Credentials theirs;
    if (read_credentials(t.old_tid, &theirs, nullptr) && !same_credentials(mine, theirs)) {
      why->str("thread ").u64(t.old_tid)
          .str(" has other user or group ids or supplementary groups than the main thread (set by a raw system "
               "call): a resume gives every thread the same");
      return false;
    }
  }
  if (process_table->overflowed()) {
    why->str("no room for the process's supplementary groups");
    return false;
  }
  return true;
}

bool capture_leases(TableBuilder* descriptors, LineWriter* why) {
  for (uint32_t i = 0; i < descriptors->count(); i++) {
    auto* d = static_cast<snap::DescriptorRecord*>(descriptors->record(i));
    const long lease = sys::call6(SYS_fcntl, d->fd, F_GETLEASE);
    if (lease != F_RDLCK && lease != F_WRLCK) continue;
    if (d->kind != uint32_t(snap::DescriptorKind::kFile)) {
      why->str("descriptor ").i64(d->fd).str(" holds a lease on a file a resume does not open again by name");
      return false;
    }
    const long signal = sys::call6(SYS_fcntl, d->fd, F_GETSIG);
    d->lease = (lease == F_RDLCK ? snap::kLeaseRead : snap::kLeaseWrite) | uint32_t(signal > 0 ? signal : 0) << 8;
  }
  return true;
}

void note_rseq(long area, long length, long flags, long signature, long result) {
  if (result != 0) return;
  const uint32_t tid = uint32_t(sys::gettid());
  if (flags == 0) {
    RseqSlot* s = rseq_slot(tid, true);
    if (!s) return;  // the checkpoint finds the registration without a name, and refuses
    s->length = uint32_t(length);
    s->signature = uint32_t(signature);
    s->area.store(uint64_t(area), std::memory_order_release);
  } else if (RseqSlot* s = rseq_slot(tid, false)) {
    s->area.store(0, std::memory_order_release);  // unregistered
  }
}

void note_membarrier(long command, long flags, long result) {
  (void)flags;
  if (result == 0 && command == MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) {
    g_membarrier_global.store(true, std::memory_order_release);
  }
}

bool program_rseq_of_this_thread(uint64_t* area, uint32_t* length, uint32_t* signature) {
  RseqSlot* s = rseq_slot(uint32_t(sys::gettid()), false);
  if (!s) return false;
  *area = s->area.load(std::memory_order_acquire);
  *length = s->length;
  *signature = s->signature;
  return *area != 0;
}

}  // namespace uffdlazy::ckpt
