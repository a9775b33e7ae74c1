// The hand-over between the freestanding restorer (tools/restorer/) and the shim inside the
// resumed process. Header-only, no C++ library: both sides compile against it.
//
// The ResumeBlock is a global of the shim, so it comes back with the shim's memory; the image
// records its address. The restorer fills it in before any thread of the process runs again,
// then lets the threads go in this order, each step waiting for the previous one:
//   1. the monitor: adopts the new userfaultfd and the image as its page source, sets
//      monitor_ready;
//   2. the checkpoint thread: points the shim at the new descriptors and pid, sets capture_done;
//   3. the application threads, the leader last. Each leaves the restorer's zone for good the
//      moment it jumps; in the shim it then decrements threads_in_zone, and once that is zero
//      the checkpoint thread unmaps the zone.
#pragma once

#include <cstdint>

namespace uffdlazy::ckpt {

inline constexpr uint64_t kResumeMagic = 0x454d55534552554cull;  // "LURESUME"

inline constexpr uint32_t kResumeLazy = 1u << 0;    // lazy ranges are registered and owed
inline constexpr uint32_t kResumeStats = 1u << 1;   // --stats
inline constexpr uint32_t kResumeVerify = 1u << 2;  // checksum each page before it is served
// Incremental checkpoints: the lazy ranges are registered for write-protection too (the
// descriptor tracks writes) and later checkpoints store what changed since this image.
inline constexpr uint32_t kResumeIncremental = 1u << 3;

// The resume call's paging settings (UFFDLAZY_PREFETCH, UFFDLAZY_READAHEAD of `uffdlazy resume`),
// kept inside `flags` so that the block's layout, and so every image written before, stays the
// same. Prefetch: kResumePrefetch* in bits 8-9. Readahead: the window's cap in pages (1 to 4096)
// in bits 16-28; 0 there means "not given" (a restorer that did not set it): the monitor then
// keeps the settings it had at the checkpoint.
inline constexpr uint32_t kResumePrefetchShift = 8;
inline constexpr uint32_t kResumePrefetchMask = 0x3;
inline constexpr uint32_t kResumePrefetchNone = 0, kResumePrefetchWorkingSet = 1, kResumePrefetchAll = 2;
inline constexpr uint32_t kResumeReadaheadShift = 16;
inline constexpr uint32_t kResumeReadaheadMask = 0x1fff;

inline constexpr uint32_t resume_paging_flags(uint32_t prefetch, uint32_t readahead) {
  return (prefetch & kResumePrefetchMask) << kResumePrefetchShift |
         (readahead & kResumeReadaheadMask) << kResumeReadaheadShift;
}
inline constexpr uint32_t resume_prefetch(uint32_t flags) {
  return (flags >> kResumePrefetchShift) & kResumePrefetchMask;
}
inline constexpr uint32_t resume_readahead(uint32_t flags) {
  return (flags >> kResumeReadaheadShift) & kResumeReadaheadMask;
}
static_assert(resume_readahead(resume_paging_flags(2, 4096)) == 4096);
static_assert(resume_prefetch(resume_paging_flags(2, 4096)) == 2);

// A zombie child made again at resume: the pid the program knows (old_pid) and the one it has
// now. The shim's wait and kill interposers translate through it (core/checkpoint/child_pids.h).
struct ChildPid {
  int32_t old_pid;  // 0: a free slot (the child was waited for)
  int32_t new_pid;
};
inline constexpr uint32_t kMaxChildPids = 64;

// The resume of a process tree is all or nothing: `uffdlazy resume` passes every process's
// restorer (the root's and each member's) one shared page holding this (a memfd: barrier=FD).
// Each restorer, once everything that can refuse is behind it and before its point of no return,
// counts itself in and waits until all have (then the tree runs) or one has refused (then every
// process of the tree ends with status 2; the one that refused said why).
struct ResumeBarrier {
  int32_t expected;  // processes that run a restorer (zombies do not)
  int32_t arrived;   // futex word
  int32_t failed;    // set (and `arrived` woken) by a restorer that refuses
};
// How long a restorer waits for the rest of its tree (a member killed on its way never arrives).
inline constexpr uint64_t kResumeBarrierTimeoutNs = 60ull * 1000 * 1000 * 1000;

struct ResumeBlock {
  uint64_t magic;       // kResumeMagic once the restorer has filled the block in
  uint32_t flags;       // kResume*, and the paging settings (resume_paging_flags)
  int32_t image_fd;     // the image, in the monitor's descriptor table (lazy only), else -1
  int32_t uffd_fd;      // the new userfaultfd (at the number the shim used), or -1: none
  uint32_t uffd_origin;  // UffdOrigin
  uint64_t uffd_features;
  uint64_t zone_start, zone_length;  // the restorer's zone, unmapped once every thread left it
  uint64_t launch_ns;   // CLOCK_MONOTONIC when `uffdlazy resume` started
  uint64_t running_ns;  // CLOCK_MONOTONIC when the restorer let the first thread go
  uint64_t eager_pages; // pages the restorer put in place
  uint64_t lazy_pages;  // stored pages left to the monitor
  uint32_t monitor_ready;    // futex word: 1 once the monitor serves (2: it could not)
  uint32_t capture_done;     // futex word: 1 once the checkpoint thread has finished
  uint32_t threads_in_zone;  // futex word: threads still to leave the restorer's zone
  uint32_t resumes;          // how many times this process was resumed
  char report[1024];         // --report FILE, or empty
  char image[1024];          // the image's path, for messages
  char checkpoint[1024];     // where a later checkpoint of the resumed process goes (empty: where
                             // the first one went)
  // Appended (an image says it has them with kProcessChildMap): the children made again.
  uint32_t child_count;      // slots in use at the start of `children`
  uint32_t reserved;
  ChildPid children[kMaxChildPids];
};

}  // namespace uffdlazy::ckpt
