// A thin, allocation-free wrapper around one userfaultfd: creation in the order the shim prefers,
// the API handshake, (un)registration and the page-filling ioctls with every documented outcome
// turned into a value the monitor can act on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <linux/userfaultfd.h>

#include "core/base/high_fd.h"

namespace uffdlazy {

enum class UffdOrigin {
  kNone,
  kSyscall,       // userfaultfd(2) with kernel-mode faults: needs CAP_SYS_PTRACE or the sysctl
  kDevice,        // /dev/userfaultfd + USERFAULTFD_IOC_NEW: gated by the device's permissions
  kUserModeOnly,  // userfaultfd(2) with UFFD_USER_MODE_ONLY: read(2) into a lazy page fails EFAULT
};

const char* origin_name(UffdOrigin o);

// Why creation failed, for the one fail-open line. Errno values are 0 when a path was not tried.
struct UffdOpenFailure {
  int syscall_errno = 0;
  int device_errno = 0;
  int user_mode_errno = 0;
  int api_errno = 0;               // UFFDIO_API failed
  uint64_t missing_features = 0;   // features the kernel does not offer
};

// The result of a COPY or ZEROPAGE, already interpreted.
enum class FillStatus {
  kDone,          // all bytes installed, waiters woken (unless DONTWAKE)
  kExists,        // EEXIST: a page is already there; nothing written; waiters need a wake
  kPartial,       // EAGAIN with progress: `bytes` installed and woken; retry from dst + bytes
  kEventPending,  // EAGAIN without progress: an event is unread; read events, then retry
  kNoEntry,       // ENOENT: not inside one registered VMA (unmapped, moved or unregistered)
  kExiting,       // ESRCH: the target process is exiting
  kError,         // anything else; `err` says what
};

struct FillResult {
  FillStatus status;
  size_t bytes;  // bytes installed (kDone, kPartial)
  int err;       // errno for kError
};

// UFFD_FEATURE_WP_ASYNC (Linux 6.7), which the build's headers may predate: write-protect faults
// resolved by the kernel itself, which only clears the page's write-protect bit. What
// PAGEMAP_SCAN then reports as written is what changed since the page was protected.
inline constexpr uint64_t kFeatureWpAsync = uint64_t(1) << 15;

class Userfaultfd {
 public:
  static constexpr uint64_t kRequiredFeatures =
      UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
  static constexpr uint64_t kWantedFeatures = kRequiredFeatures | UFFD_FEATURE_THREAD_ID;

  // Tries the syscall, then the device, then (only if allowed) user-mode-only. On success the fd
  // is O_CLOEXEC | O_NONBLOCK, at a high number (core/base/high_fd.h), and the API handshake is
  // done with kRequiredFeatures at least. track_writes: ask for kFeatureWpAsync too (incremental
  // checkpoints); a kernel without it gives a descriptor that does not track (tracks_writes()).
  bool open(bool allow_user_mode_only, UffdOpenFailure* why, bool track_writes = false);
  // Adopts an fd that is already set up (tests).
  void adopt(int fd, uint64_t features, UffdOrigin origin);
  // Closes the descriptor if the number still names it (the program may have closed it and reused
  // the number for a file of its own), and forgets it either way.
  void close();
  // True while the descriptor number still names this userfaultfd in the calling thread's table
  // (each userfaultfd has an inode of its own). Program threads check it before each use.
  bool still_open() const { return identity_.still_valid(); }

  int fd() const { return fd_; }
  uint64_t features() const { return features_; }
  UffdOrigin origin() const { return origin_; }
  bool has_thread_id() const { return features_ & UFFD_FEATURE_THREAD_ID; }
  // Every range is registered for write-protection as well (asynchronous): the kernel notes which
  // pages are written after they were protected, and tells nobody (no message, no wait).
  bool tracks_writes() const { return features_ & kFeatureWpAsync; }

  // Returns 0 or -errno. `ioctls` receives the ioctls the range supports. With tracks_writes()
  // the range is registered for write-protection too.
  int register_missing(uintptr_t start, size_t len, uint64_t* ioctls = nullptr);
  int unregister(uintptr_t start, size_t len);

  // Pages installed by copy_from_source() from now on are write-protected: until the program
  // writes one, it is known to hold what was copied (the image's page). Only for a descriptor
  // whose ranges are registered for write-protection (tracks_writes(), or the restorer's).
  void protect_source_copies(bool on) { __atomic_store_n(&protect_source_copies_, on, __ATOMIC_RELAXED); }
  bool protects_source_copies() const { return __atomic_load_n(&protect_source_copies_, __ATOMIC_RELAXED); }
  FillResult copy(uintptr_t dst, const void* src, size_t len, bool wake = true) { return copy_mode(dst, src, len, wake, false); }
  // The same for content from the page source (never zeros made up by the monitor: a page the
  // source does not owe must never look as if it held the source's).
  FillResult copy_from_source(uintptr_t dst, const void* src, size_t len, bool wake = true) {
    return copy_mode(dst, src, len, wake, protects_source_copies());
  }
  FillResult zeropage(uintptr_t dst, size_t len, bool wake = true);
  int wake(uintptr_t start, size_t len);  // 0 or -errno

  // Reads up to `max` messages without blocking: count, 0 if none, or -errno.
  long read_messages(uffd_msg* msgs, size_t max);

 private:
  bool handshake(int fd, UffdOpenFailure* why, bool track_writes);
  FillResult copy_mode(uintptr_t dst, const void* src, size_t len, bool wake, bool write_protect);

  bool take(int fd, UffdOrigin origin);

  int fd_ = -1;
  FdIdentity identity_;
  uint64_t features_ = 0;
  UffdOrigin origin_ = UffdOrigin::kNone;
  bool protect_source_copies_ = false;
};

}  // namespace uffdlazy
