// Reading the settings of process_settings_format.h back from the kernel, with raw system calls
// only: the shim reads the checkpointed process's (each thread its own, in its stop handler), the
// freestanding restorer its own, to see what differs. Header-only and free of libc for the
// restorer's sake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/prctl.h>

#include "core/base/raw_syscall.h"
#include "core/snapshot/process_format.h"

namespace uffdlazy::settings {

// Constants newer than some headers.
inline constexpr int kPrGetMdwe = 66;
inline constexpr int kPrSetMdwe = 65;
inline constexpr int kPrGetMemoryMerge = 68;
inline constexpr int kPrSetMemoryMerge = 67;
inline constexpr int kPrGetIoFlusher = 58;
inline constexpr int kPrSetIoFlusher = 57;
inline constexpr int kArchGetCpuid = 0x1011;
inline constexpr int kArchSetCpuid = 0x1012;
inline constexpr int kArchGetXcompPerm = 0x1022;
inline constexpr int kArchReqXcompPerm = 0x1023;
inline constexpr int kArchGetUntagMask = 0x4001;
inline constexpr int kArchEnableTaggedAddr = 0x4002;
inline constexpr int kIoprioWhoProcess = 1;
inline constexpr int kLastCapability = 63;

// sched_attr as sched_getattr(2) fills it (the size of kernels with utilization clamps).
struct SchedAttr {
  uint32_t size;
  uint32_t policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime, deadline, period;
  uint32_t util_min, util_max;
};
static_assert(sizeof(SchedAttr) == 56);

inline long prctl(long option, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0) {
  return sys::call6(SYS_prctl, option, a2, a3, a4, a5);
}

// The calling thread's capabilities (capget with pid 0 is the calling thread).
inline bool read_capabilities(uint64_t* effective, uint64_t* permitted, uint64_t* inheritable) {
  __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  if (sys::call6(SYS_capget, long(&h), long(d)) != 0) return false;
  *effective = uint64_t(d[1].effective) << 32 | d[0].effective;
  *permitted = uint64_t(d[1].permitted) << 32 | d[0].permitted;
  *inheritable = uint64_t(d[1].inheritable) << 32 | d[0].inheritable;
  return true;
}

inline void read_thread_settings(snap::ThreadSettings* s) {
  *s = snap::ThreadSettings{};
  SchedAttr a = {};
  if (sys::call6(SYS_sched_getattr, 0, long(&a), sizeof a, 0) == 0) {
    s->known |= snap::kKnownSched;
    s->policy = a.policy;
    s->sched_flags = a.flags;
    s->nice = a.nice;
    s->rt_priority = a.priority;
    s->dl_runtime = a.runtime;
    s->dl_deadline = a.deadline;
    s->dl_period = a.period;
    if (a.size >= sizeof a) {
      s->known |= snap::kKnownUtilClamp;
      s->util_min = a.util_min;
      s->util_max = a.util_max;
    }
  }
  if (sys::call6(SYS_sched_getaffinity, 0, sizeof s->affinity, long(s->affinity)) > 0) s->known |= snap::kKnownAffinity;
  long r = sys::call6(SYS_ioprio_get, kIoprioWhoProcess, 0);
  if (r >= 0) {
    s->known |= snap::kKnownIoprio;
    s->ioprio = uint32_t(r);
  }
  int v = 0;
  prctl(PR_GET_PDEATHSIG, long(&v));
  s->pdeath_signal = v;
  s->timer_slack_ns = uint64_t(prctl(PR_GET_TIMERSLACK));
  s->no_new_privs = uint32_t(prctl(PR_GET_NO_NEW_PRIVS));
  s->securebits = uint32_t(prctl(PR_GET_SECUREBITS));
  r = prctl(PR_MCE_KILL_GET);
  if (r >= 0) {
    s->known |= snap::kKnownMceKill;
    s->mce_kill = int32_t(r);
  }
  v = 0;
  if (prctl(PR_GET_TSC, long(&v)) == 0) {
    s->known |= snap::kKnownTsc;
    s->tsc = v;
  }
#if defined(__x86_64__)
  r = sys::call6(SYS_arch_prctl, kArchGetCpuid, 0);
  if (r >= 0) {
    s->known |= snap::kKnownCpuid;
    s->cpuid = int32_t(r);
  }
#endif
  r = prctl(kPrGetIoFlusher);
  if (r >= 0) {  // unknown without CAP_SYS_RESOURCE: then the thread could not have set it either
    s->known |= snap::kKnownIoFlusher;
    s->io_flusher = int32_t(r);
  }
  for (uint32_t i = 0; i < snap::kSpeculationControls; i++) {
    r = prctl(PR_GET_SPECULATION_CTRL, long(i));
    if (r >= 0) {
      s->known |= snap::kKnownSpeculation << i;
      s->speculation[i] = int32_t(r);
    }
  }
  if (read_capabilities(&s->cap_effective, &s->cap_permitted, &s->cap_inheritable)) {
    s->known |= snap::kKnownCapabilities;
    for (int cap = 0; cap <= kLastCapability; cap++) {
      r = prctl(PR_CAPBSET_READ, cap);
      if (r < 0) break;  // past the kernel's last capability
      if (r) s->cap_bounding |= uint64_t(1) << cap;
      if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap) == 1) s->cap_ambient |= uint64_t(1) << cap;
    }
  }
}

// A small decimal or hexadecimal number at the start of a /proc file (fits its first 63 bytes).
inline bool read_number_file(const char* path, int base, int64_t* out) {
  const long fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[64];
  const long n = sys::read(int(fd), buf, sizeof buf - 1);
  sys::close(int(fd));
  if (n <= 0) return false;
  buf[n] = 0;
  const char* p = buf;
  const bool negative = *p == '-';
  if (negative) p++;
  int64_t v = 0;
  bool any = false;
  for (;; p++) {
    int d;
    if (*p >= '0' && *p <= '9') d = *p - '0';
    else if (base == 16 && *p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
    else break;
    v = v * base + d;
    any = true;
  }
  *out = negative ? -v : v;
  return any;
}

// The inode number in a /proc/self/ns link ("net:[4026531840]"); 0 when there is none.
inline uint64_t namespace_inode(const char* name) {
  char path[64] = "/proc/self/ns/";
  size_t n = 14;
  for (const char* p = name; *p && n < sizeof path - 1; p++) path[n++] = *p;
  path[n] = 0;
  char link[64];
  const long len = sys::call6(SYS_readlinkat, AT_FDCWD, long(path), long(link), sizeof link - 1);
  if (len <= 0) return 0;
  link[len] = 0;
  const char* p = link;
  while (*p && *p != '[') p++;
  if (!*p) return 0;
  uint64_t v = 0;
  for (p++; *p >= '0' && *p <= '9'; p++) v = v * 10 + uint64_t(*p - '0');
  return v;
}

// Everything of ProcessSettings but the membarrier registrations (only the shim can probe them)
// and the group list (group_count only).
inline void read_process_settings(snap::ProcessSettings* s) {
  *s = snap::ProcessSettings{};
  int64_t v;
  if (read_number_file("/proc/self/oom_score_adj", 10, &v)) {
    s->known |= snap::kKnownOomScoreAdj;
    s->oom_score_adj = int32_t(v);
  }
  if (read_number_file("/proc/self/coredump_filter", 16, &v)) {
    s->known |= snap::kKnownCoredumpFilter;
    s->coredump_filter = uint32_t(v);
  }
  s->dumpable = uint32_t(prctl(PR_GET_DUMPABLE));
  long r = prctl(PR_GET_THP_DISABLE);
  if (r >= 0) {
    s->known |= snap::kKnownThpDisable;
    s->thp_disable = uint32_t(r);
  }
  int reaper = 0;
  prctl(PR_GET_CHILD_SUBREAPER, long(&reaper));
  s->child_subreaper = uint32_t(reaper);
  r = prctl(kPrGetMdwe);
  if (r >= 0) {
    s->known |= snap::kKnownMdwe;
    s->mdwe = uint32_t(r);
  }
  r = prctl(kPrGetMemoryMerge);
  if (r >= 0) {
    s->known |= snap::kKnownMemoryMerge;
    s->memory_merge = uint32_t(r);
  }
  uint32_t ids[3];
  sys::call6(SYS_getresuid, long(&ids[0]), long(&ids[1]), long(&ids[2]));
  s->suid = ids[2];
  sys::call6(SYS_getresgid, long(&ids[0]), long(&ids[1]), long(&ids[2]));
  s->sgid = ids[2];
  s->fsuid = uint32_t(sys::call6(SYS_setfsuid, -1));  // an invalid id changes nothing, returns the current
  s->fsgid = uint32_t(sys::call6(SYS_setfsgid, -1));
  r = sys::call6(SYS_getgroups, 0, 0);
  s->group_count = r > 0 ? uint32_t(r) : 0;
#if defined(__x86_64__)
  uint64_t bits = 0;
  if (sys::call6(SYS_arch_prctl, kArchGetXcompPerm, long(&bits)) == 0) {
    s->known |= snap::kKnownXcompPerm;
    s->xcomp_perm = bits;
  }
  bits = 0;
  if (sys::call6(SYS_arch_prctl, kArchGetUntagMask, long(&bits)) == 0) {
    s->known |= snap::kKnownUntagMask;
    s->untag_mask = bits;
  }
#endif
  for (uint32_t i = 0; i < snap::kNamespaces; i++) s->namespaces[i] = namespace_inode(snap::kNamespaceNames[i]);
}

}  // namespace uffdlazy::settings
