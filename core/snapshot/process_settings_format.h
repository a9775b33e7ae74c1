// The settings a process image keeps besides memory, threads and descriptors: process-wide ones at
// the end of the ProcessRecord, per-thread ones at the end of each ThreadRecord (process_format.h;
// appended after 1.0: a reader takes a shorter record as one written without them). FORMAT.md
// ("Process images") is the prose version; core/checkpoint/process_settings.h reads them,
// tools/restorer/process_settings.cpp restores them, or refuses the resume with one line.
//
// A field is meaningful only when its bit is set in `known` (the kernel could not say, or has no
// such setting): a resume leaves the others as they are.
#pragma once

#include <cstdint>

namespace uffdlazy::snap {

// ProcessSettings::known
inline constexpr uint32_t kKnownOomScoreAdj = 1u << 0;
inline constexpr uint32_t kKnownCoredumpFilter = 1u << 1;
inline constexpr uint32_t kKnownThpDisable = 1u << 2;
inline constexpr uint32_t kKnownMdwe = 1u << 3;
inline constexpr uint32_t kKnownMemoryMerge = 1u << 4;
inline constexpr uint32_t kKnownMembarrier = 1u << 5;
inline constexpr uint32_t kKnownXcompPerm = 1u << 6;
inline constexpr uint32_t kKnownUntagMask = 1u << 7;

// ProcessSettings::membarrier: the process's registrations (membarrier(2) MEMBARRIER_CMD_REGISTER_*).
inline constexpr uint32_t kMembarrierPrivateExpedited = 1u << 0;
inline constexpr uint32_t kMembarrierPrivateExpeditedSyncCore = 1u << 1;
inline constexpr uint32_t kMembarrierPrivateExpeditedRseq = 1u << 2;
inline constexpr uint32_t kMembarrierGlobalExpedited = 1u << 3;  // seen through syscall(2) only

// The namespaces a resume must run in, as /proc/self/ns names them.
inline constexpr uint32_t kNamespaces = 10;
inline constexpr const char* kNamespaceNames[kNamespaces] = {
    "cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"};

struct ProcessSettings {
  uint32_t known;  // kKnown*
  int32_t oom_score_adj;
  uint32_t coredump_filter;
  uint32_t dumpable;         // PR_GET_DUMPABLE
  uint32_t thp_disable;      // PR_GET_THP_DISABLE: bit 0 disabled, the other bits its flags
  uint32_t child_subreaper;  // PR_GET_CHILD_SUBREAPER
  uint32_t mdwe;             // PR_GET_MDWE
  uint32_t memory_merge;     // PR_GET_MEMORY_MERGE
  uint32_t membarrier;       // kMembarrier*
  // Credentials that glibc keeps the same in every thread (the rest of uid and gid: ProcessRecord).
  uint32_t suid, fsuid, sgid, fsgid;
  uint32_t group_count;
  StringRef groups;       // group_count ids (uint32_t each) in the process table's strings
  uint64_t xcomp_perm;    // ARCH_GET_XCOMP_PERM: the XSAVE features the process may use (AMX ...)
  uint64_t untag_mask;    // ARCH_GET_UNTAG_MASK: address tagging (LAM)
  uint64_t namespaces[kNamespaces];  // inode numbers, kNamespaceNames order; 0: none
};

// ThreadSettings::known
inline constexpr uint32_t kKnownSched = 1u << 0;        // policy, nice, priority, deadline parameters
inline constexpr uint32_t kKnownUtilClamp = 1u << 1;
inline constexpr uint32_t kKnownAffinity = 1u << 2;
inline constexpr uint32_t kKnownIoprio = 1u << 3;
inline constexpr uint32_t kKnownMceKill = 1u << 4;
inline constexpr uint32_t kKnownTsc = 1u << 5;
inline constexpr uint32_t kKnownCpuid = 1u << 6;
inline constexpr uint32_t kKnownIoFlusher = 1u << 7;
inline constexpr uint32_t kKnownCapabilities = 1u << 8;
inline constexpr uint32_t kKnownSpeculation = 1u << 9;  // bit 9 + i: speculation[i]

// ThreadSettings::flags
// The thread has a restartable-sequence area the shim cannot name (registered by a raw system
// call): a checkpoint refuses it.
inline constexpr uint32_t kThreadRseqUnknown = 1u << 0;

inline constexpr uint32_t kAffinityWords = 16;  // CPUs 0-1023
inline constexpr uint32_t kSpeculationControls = 3;  // PR_SPEC_STORE_BYPASS, _INDIRECT_BRANCH, _L1D_FLUSH

struct ThreadSettings {
  uint32_t known;  // kKnown* (thread)
  uint32_t flags;  // kThread*
  // sched_getattr(2)
  uint32_t policy;
  int32_t nice;
  uint64_t sched_flags;
  uint32_t rt_priority;
  uint32_t util_min, util_max;
  uint32_t reserved0;
  uint64_t dl_runtime, dl_deadline, dl_period;
  uint64_t affinity[kAffinityWords];
  uint32_t ioprio;
  int32_t pdeath_signal;
  uint64_t timer_slack_ns;
  uint32_t no_new_privs;
  uint32_t securebits;
  int32_t mce_kill;  // PR_MCE_KILL_GET
  int32_t tsc;       // PR_GET_TSC
  int32_t cpuid;     // ARCH_GET_CPUID
  int32_t io_flusher;
  int32_t speculation[4];  // PR_GET_SPECULATION_CTRL, kSpeculationControls used
  uint64_t cap_effective, cap_permitted, cap_inheritable, cap_bounding, cap_ambient;
};

}  // namespace uffdlazy::snap
