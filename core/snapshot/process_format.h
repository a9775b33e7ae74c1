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
  kObjects = 20,      // ObjectRecord[]: what descriptors, mappings and the process hold beyond files
  kObjectData = 21,   // the bytes objects hold (ObjectRecord::data_*): read where it lies, not copied
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
// The shim's ResumeBlock has the child pid map (resume_protocol.h): the restorer fills it in.
inline constexpr uint32_t kProcessChildMap = 1u << 1;

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
  kShared = 6,       // shared anonymous memory or a SysV segment (its object, kSharedMemory): made
                     // again and mapped; its pages are stored as regions of this mapping
};

inline constexpr uint32_t kMappingLazy = 1u << 0;       // registered: pages served by the monitor
inline constexpr uint32_t kMappingMayWrite = 1u << 1;   // shared: the file was opened for writing
inline constexpr uint32_t kMappingHeap = 1u << 2;       // the brk heap
inline constexpr uint32_t kMappingGrowsDown = 1u << 3;
inline constexpr uint32_t kMappingDontFork = 1u << 4;    // MADV_DONTFORK: applied again at resume
inline constexpr uint32_t kMappingWipeOnFork = 1u << 5;  // MADV_WIPEONFORK: applied again at resume
// How the mapping was made and advised (smaps VmFlags), applied again at resume:
inline constexpr uint32_t kMappingNoReserve = 1u << 6;   // MAP_NORESERVE ("nr")
inline constexpr uint32_t kMappingSequential = 1u << 7;  // MADV_SEQUENTIAL ("sr")
inline constexpr uint32_t kMappingRandom = 1u << 8;      // MADV_RANDOM ("rr")
inline constexpr uint32_t kMappingDontDump = 1u << 9;    // MADV_DONTDUMP ("dd")
inline constexpr uint32_t kMappingHugePage = 1u << 10;   // MADV_HUGEPAGE ("hg")
inline constexpr uint32_t kMappingNoHugePage = 1u << 11; // MADV_NOHUGEPAGE ("nh")
inline constexpr uint32_t kMappingMergeable = 1u << 12;  // MADV_MERGEABLE ("mg")

struct MappingRecord {
  uint64_t start, end;
  uint32_t prot;   // PROT_*
  uint32_t kind;   // MappingKind
  uint32_t flags;  // kMapping*
  uint32_t object;  // 0, or 1 + the index of the ObjectRecord mapped: kShared's, or a file mapping's
                    // deleted file or memfd (mapped from the object, not by path)
  uint64_t offset;  // file offset (file mappings, and shared memory's offset in its object)
  // The file as it was: a resume refuses when any of these changed.
  uint64_t dev, ino, size, mtime_ns;
  StringRef path;  // file mappings; the name of special mappings
};
static_assert(sizeof(MappingRecord) == 80);

enum class DescriptorKind : uint32_t {
  kFile = 0,        // a regular file (or directory, or /dev/null-like device): reopened by path
  kShimUffd = 1,    // the shim's userfaultfd: a new one takes the number
  kShimStderr = 2,  // the shim's private copy of stderr: the resumer's stderr takes the number
  kObject = 3,      // opens an object (DescriptorRecord::object): a pipe, a socket, an eventfd, ...
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
  // Appended in 1.1 (record_size 64):
  int32_t same_as;  // -1, or a lower descriptor sharing this one's open file description (a dup):
                    // made again as a dup of it, sharing flags and offset
  uint32_t object;  // kObject: 1 + the index of its ObjectRecord
};
static_assert(sizeof(DescriptorRecord) == 64);
inline constexpr uint32_t kDescriptorRecordSize10 = 56;  // 1.0's, without same_as and object

// A descriptor record of any 1.x size, the fields it lacks at their defaults.
inline DescriptorRecord read_descriptor(const uint8_t* record, uint32_t record_size) {
  DescriptorRecord d{};
  __builtin_memcpy(&d, record, record_size < sizeof d ? record_size : sizeof d);
  if (record_size < sizeof d) {
    d.same_as = -1;
    d.object = 0;
  }
  return d;
}

// Objects: the kernel state behind descriptors, shared mappings and the process that a resume
// makes again (pipes, sockets, eventfds, deleted files, shared memory, timers, ...). A record has
// the fields every object has, then fields of its kind; variable parts (a pipe's buffered bytes,
// an epoll's interest list, a deleted file's contents) lie in the object data section.
enum class ObjectKind : uint32_t {
  kPipe = 0,           // a pipe, or a FIFO (path: its name): data = the bytes buffered in it
  kUnixSocket = 1,     // data = its receive queue (SocketState)
  kInetSocket = 2,     // TCP or UDP, listening or not connected (SocketState)
  kEventfd = 3,
  kEpoll = 4,          // data = EpollEntry[count]
  kSignalfd = 5,
  kTimerfd = 6,
  kInotify = 7,        // data = InotifyWatch[count]
  kDeletedFile = 8,    // an open or mapped file that was deleted (path: its old name): data =
                       // FileExtent[count] then their bytes; a directory or FIFO has no data
  kMemfd = 9,          // a memfd (path: its name), data as for a deleted file
  kSharedMemory = 10,  // shared anonymous memory or a SysV segment; its pages are in the regions
  kPosixTimer = 11,    // timer_create
  kDeletedCwd = 12,    // the working directory was deleted (path: its old name)
  kZombieChild = 13,   // a child that has exited and was not waited for yet (ZombieState)
  kChild = 14,         // a child still running, checkpointed with it: its image is IMG.PID
                       // (ZombieState: pid only)
};

// SocketState::state
enum class SocketConnection : uint32_t {
  kUnconnected = 0,  // bound or not
  kListening = 1,
  kConnected = 2,    // to `peer` (an object of this image), or to nothing any more (peer < 0)
  kPending = 3,      // a connection in `listener`'s queue, not accepted yet
};

struct SocketState {
  int32_t family, type, protocol;
  uint32_t state;     // SocketConnection
  int32_t peer;       // index of the peer's ObjectRecord, or -1
  int32_t listener;   // kPending: index of the listening socket's ObjectRecord
  uint32_t backlog;   // kListening
  uint32_t shutdown;  // bit 0: no more receives, bit 1: no more sends
  uint32_t options;   // kSocketOption* set at the checkpoint
  uint32_t datagrams; // the receive queue holds this many datagrams, each a u32 length and its
                      // bytes, padded to 4 (stream sockets: the queued bytes as they are)
  uint32_t rcvbuf, sndbuf;  // SO_RCVBUF / SO_SNDBUF when set by the program (else 0)
  int32_t peek_offset;      // SO_PEEK_OFF (-1: off)
  uint32_t file_mode;       // unix: the mode of its socket file (bound to a path), 0 if none
};
inline constexpr uint32_t kSocketReuseAddr = 1u << 0;
inline constexpr uint32_t kSocketReusePort = 1u << 1;
inline constexpr uint32_t kSocketKeepAlive = 1u << 2;
inline constexpr uint32_t kSocketPassCred = 1u << 3;
inline constexpr uint32_t kSocketV6Only = 1u << 4;
inline constexpr uint32_t kSocketNoDelay = 1u << 5;
inline constexpr uint32_t kSocketBroadcast = 1u << 6;

struct EventfdState {
  uint64_t count;
  uint32_t semaphore;
  uint32_t reserved;
};

struct SignalfdState {
  uint64_t mask;  // bit n-1: signal n
};

struct TimerfdState {
  int32_t clock;
  uint32_t settime_flags;  // TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET
  uint64_t ticks;          // expirations not read yet
  int64_t value_sec, value_nsec;        // time left until the next expiration (0: disarmed)
  int64_t interval_sec, interval_nsec;
};

struct FileState {  // kDeletedFile, kMemfd (and kPipe: a FIFO's mode)
  uint64_t size;
  uint32_t mode;   // st_mode (type and permissions)
  uint32_t seals;  // kMemfd: F_GET_SEALS
  uint32_t uid, gid;  // owner, given back when the resumer may (fchown)
};

struct SharedMemoryState {  // kSharedMemory
  uint64_t size;      // bytes (a SysV segment's size; shared anonymous memory's mapped extent)
  int32_t sysv_key;   // SysV: the segment's key (IPC_PRIVATE: 0); -1: shared anonymous memory
  int32_t sysv_id;    // SysV: the id at the checkpoint
  uint32_t mode;      // SysV: permissions
  uint32_t removed;   // SysV: marked for removal (IPC_RMID) at the checkpoint
};

struct PosixTimerState {
  int32_t id;        // the kernel's timer id (what timer_create returned)
  int32_t clock;
  int32_t notify;    // SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID
  int32_t signal;
  uint64_t sigev_value;
  uint32_t thread;   // SIGEV_THREAD_ID: the old tid of the thread it signals
  uint32_t reserved;
  int64_t value_sec, value_nsec;        // time left (0: disarmed)
  int64_t interval_sec, interval_nsec;
};

// A zombie child, made again at resume by a child of the resumer that ends the same way.
struct ZombieState {
  int32_t pid;     // the pid the program knows it by (the first image's, across generations)
  int32_t code;    // CLD_EXITED or CLD_KILLED (waitid's si_code)
  int32_t status;  // the exit status, or the signal
  int32_t reserved;
};

struct ObjectRecord {
  uint32_t kind;   // ObjectKind
  uint32_t flags;  // kObject*
  uint64_t dev, ino;  // the kernel's device and inode at the checkpoint (identity)
  uint64_t data_offset, data_length;  // in the object data section (offset 8-aligned)
  uint32_t count;  // entries at the start of the data (epoll, inotify, file extents)
  uint32_t pipe_capacity;  // kPipe: F_GETPIPE_SZ
  StringRef path;       // see ObjectKind; a socket's own address (its raw bytes)
  StringRef peer_path;  // a socket: the address it is connected to
  union {
    SocketState socket;
    EventfdState eventfd;
    SignalfdState signalfd;
    TimerfdState timerfd;
    FileState file;
    SharedMemoryState shm;
    PosixTimerState timer;
    ZombieState zombie;
    uint8_t room[96];
  };
};
static_assert(sizeof(ObjectRecord) == 160);
inline constexpr uint32_t kObjectDeleted = 1u << 0;  // its name (path) was deleted: made again unnamed
// A unix socket accepted from a listener: its name is the listener's, not bound to it itself.
inline constexpr uint32_t kObjectNameFromListener = 1u << 1;
// A deleted file or memfd no descriptor held: its contents were read through its mappings.
inline constexpr uint32_t kObjectOnlyMapped = 1u << 2;

struct EpollEntry {
  int32_t fd;       // the descriptor number it was added with (the entry's key)
  uint32_t events;  // as fdinfo shows them (EPOLLET, EPOLLONESHOT, ... included)
  uint64_t data;
  int32_t file_fd;  // a descriptor of the watched file now (fd, unless that number was closed or
                    // reused since: the file is then put at fd just for the epoll_ctl)
  uint32_t reserved;
};

struct InotifyWatch {
  int32_t wd;
  uint32_t mask;     // as fdinfo shows it (IN_ONESHOT, IN_EXCL_UNLINK, ... included)
  StringRef path;    // in the objects table's strings
  uint64_t dev, ino; // the watched inode: a resume refuses a path that names another one
};

struct FileExtent {  // a deleted file's or memfd's data: the bytes of [offset, offset + length)
  uint64_t offset, length;  // follow the extent records, one after the other, each padded to 8
};

}  // namespace uffdlazy::snap
