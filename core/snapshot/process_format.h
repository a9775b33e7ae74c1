// The sections that make a snapshot a whole-process image (`uffdlazy checkpoint`), on top of the
// 1.x layout in format.h. FORMAT.md ("Process images") is the prose version.
//
// Each is flagged required: a reader that only restores anonymous regions must refuse an image
// rather than misread it. Each has the same shape, a small table:
//
//   TableHeader | record[count] (record_size bytes each) | strings (NUL-terminated, by offset)
//
// so a later minor version can append fields to a record (readers use record_size as the stride
// and read the fields they know). Header-only and free of the C++ library: the freestanding
// restorer (tools/restorer/) compiles against it as well.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy::snap {

enum class ProcessSection : uint32_t {
  kProcess = 16,      // one ProcessRecord
  kThreads = 17,      // ThreadRecord[]
  kMappings = 18,     // MappingRecord[], in address order, not overlapping
  kDescriptors = 19,  // DescriptorRecord[]
};

// Header flag (format.h flags): the snapshot is a process image.
inline constexpr uint64_t kFlagProcessImage = 1u << 2;

struct TableHeader {
  uint32_t count;
  uint32_t record_size;
  uint32_t strings_offset;  // from the start of the section
  uint32_t strings_length;
};
static_assert(sizeof(TableHeader) == 16);

// A string in a table's string area: offset and length (without the NUL that follows).
struct StringRef {
  uint32_t offset;
  uint32_t length;
};

// The restorer's fixed zone: its code, stacks and the image mapping live here while it works. A
// program that uses any of it cannot be resumed (refused at checkpoint).
inline constexpr uint64_t kRestorerZoneStart = 0x100000000000ull;
inline constexpr uint64_t kRestorerZoneLength = 0x10000000000ull;  // 1 TiB

inline constexpr uint32_t kMaxAuxvWords = 128;
inline constexpr uint32_t kRlimits = 16;
inline constexpr uint32_t kSignals = 64;

struct KernelSigaction {  // rt_sigaction's kernel layout on x86_64 and aarch64
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};
static_assert(sizeof(KernelSigaction) == 32);

struct Itimer {
  int64_t interval_sec, interval_usec, value_sec, value_usec;
};

struct Rlimit {
  uint64_t cur, max;
};

// What PR_SET_MM_MAP takes, from /proc/self/stat and brk(0).
struct MmFields {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
};

}  // namespace uffdlazy::snap

#include "core/snapshot/process_settings_format.h"  // ProcessSettings, ThreadSettings (use StringRef)

namespace uffdlazy::snap {

// ProcessRecord::flags
inline constexpr uint32_t kProcessIncremental = 1u << 0;  // later checkpoints store changes only

struct ProcessRecord {
  uint32_t old_pid;
  uint32_t uid, euid, gid, egid;
  uint32_t umask;
  uint32_t personality;
  uint32_t then_stop;  // the checkpoint ended the process (informative)
  MmFields mm;
  uint32_t auxv_words;  // used words of auxv (pairs, AT_NULL included)
  uint32_t flags;       // kProcess*
  uint64_t auxv[kMaxAuxvWords];
  Rlimit rlimits[kRlimits];
  Itimer itimers[3];  // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  KernelSigaction sigactions[kSignals];  // [i] is signal i + 1
  // The vDSO trio as it was mapped; lengths 0 when absent.
  uint64_t vvar_start, vvar_length, vclock_start, vclock_length, vdso_start, vdso_length;
  uint64_t vdso_checksum;  // XXH3-64 of the vDSO's bytes: another kernel build does not match
  uint64_t xcr0;           // XSAVE features the signal frames were saved with
  // The shim's side of the hand-over (core/checkpoint/resume_protocol.h).
  uint64_t resume_block;   // address of the shim's ResumeBlock
  uint64_t doorbell;       // the monitor's doorbell page, registered again at resume
  uint64_t page_size;
  int32_t uffd_fd;         // the shim's userfaultfd number
  uint32_t uffd_origin;    // UffdOrigin at checkpoint
  uint64_t uffd_features;
  uint64_t created_ns;     // CLOCK_REALTIME of the checkpoint
  StringRef cwd;
  StringRef kernel_release;
  StringRef exe;           // the file mapped at start_code (informative: resume uses mapped files)
  uint64_t shared_pending; // signals pending for the process (bit n-1: signal n), raised again
  // Appended after 1.0 (record_size says whether a record has them): the process-wide settings a
  // resume restores, or refuses to lose.
  ProcessSettings settings;
};
inline constexpr uint32_t kProcessRecordSize10 = offsetof(ProcessRecord, settings);  // 1.0's

enum class ThreadRole : uint32_t {
  kLeader = 0,   // the thread-group leader (an application thread)
  kApp = 1,      // another application thread
  kMonitor = 2,  // the shim's monitor (served first at resume)
  kCapture = 3,  // the shim's checkpoint thread (finishes the hand-over at resume)
};

// Where a parked thread continues: the callee-saved registers of a save point in the shim
// (core/checkpoint/jump_context.h). The restorer restores these and "returns" 1 from it.
struct JumpContext {
  uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
  uint32_t mxcsr;
  uint16_t fpu_cw;
  uint16_t reserved;
};
static_assert(sizeof(JumpContext) == 72);

struct ThreadRecord {
  uint32_t old_tid;
  uint32_t role;  // ThreadRole
  uint64_t fs_base, gs_base;
  uint64_t tid_address;  // set_tid_address (glibc: &pthread->tid, which receives the new tid)
  uint64_t robust_head, robust_length;
  uint64_t rseq_area;  // 0: no rseq registration
  uint32_t rseq_length, rseq_signature;
  uint64_t signal_frame;  // the checkpoint signal's ucontext (app threads; informative)
  JumpContext context;
  char comm[16];
  uint64_t pending;  // signals pending for this thread (bit n-1: signal n), raised again
  // Appended after 1.0 (record_size says): the thread's own settings (scheduling, capabilities, ...).
  ThreadSettings settings;
};
inline constexpr uint32_t kThreadRecordSize10 = offsetof(ThreadRecord, settings);  // 1.0's

enum class MappingKind : uint32_t {
  kAnonymous = 0,    // private anonymous (including [heap], thread stacks, the shim's own)
  kStack = 1,        // [stack]: grows down
  kFilePrivate = 2,  // private file mapping; pages the process changed are stored as a region
  kFileShared = 3,   // shared file mapping: mapped again, nothing stored
  kVdso = 4,         // [vdso], [vvar], [vvar_vclock]: the restorer moves its own here
  kVsyscall = 5,     // fixed by the kernel: nothing to do
};

inline constexpr uint32_t kMappingLazy = 1u << 0;       // registered: pages served by the monitor
inline constexpr uint32_t kMappingMayWrite = 1u << 1;   // shared: the file was opened for writing
inline constexpr uint32_t kMappingHeap = 1u << 2;       // the brk heap
inline constexpr uint32_t kMappingGrowsDown = 1u << 3;

struct MappingRecord {
  uint64_t start, end;
  uint32_t prot;   // PROT_*
  uint32_t kind;   // MappingKind
  uint32_t flags;  // kMapping*
  uint32_t reserved0;
  uint64_t offset;  // file offset (file mappings)
  // The file as it was: a resume refuses when any of these changed.
  uint64_t dev, ino, size, mtime_ns;
  StringRef path;  // file mappings; the name of special mappings
};

enum class DescriptorKind : uint32_t {
  kFile = 0,        // a regular file (or directory, or /dev/null-like device): reopened by path
  kShimUffd = 1,    // the shim's userfaultfd: a new one takes the number
  kShimStderr = 2,  // the shim's private copy of stderr: the resumer's stderr takes the number
};

inline constexpr uint32_t kLeaseRead = 1;   // F_RDLCK lease (F_GETLEASE)
inline constexpr uint32_t kLeaseWrite = 2;  // F_WRLCK lease

struct DescriptorRecord {
  int32_t fd;
  uint32_t kind;       // DescriptorKind
  uint32_t open_flags; // O_* from fdinfo (O_APPEND kept; O_CREAT/O_EXCL/O_TRUNC never set)
  uint32_t cloexec;
  uint64_t position;
  uint64_t dev, ino;
  uint32_t mode;  // st_mode: the type must match at resume
  uint32_t lease;  // kLease* the program held on it, and the signal that says it breaks (F_GETSIG) << 8
  StringRef path;
};

}  // namespace uffdlazy::snap
