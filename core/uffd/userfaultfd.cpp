#include "core/uffd/userfaultfd.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/ioctl.h>

#include "core/base/raw_syscall.h"

namespace uffdlazy {

const char* origin_name(UffdOrigin o) {
  switch (o) {
    case UffdOrigin::kSyscall: return "userfaultfd(2)";
    case UffdOrigin::kDevice: return "/dev/userfaultfd";
    case UffdOrigin::kUserModeOnly: return "userfaultfd(2) user-mode-only";
    case UffdOrigin::kNone: break;
  }
  return "none";
}

bool Userfaultfd::handshake(int fd, UffdOpenFailure* why, bool track_writes) {
  // The kernel accepts one successful UFFDIO_API per descriptor; a refused request leaves the
  // descriptor uninitialised, so asking again with fewer features is allowed.
  uffdio_api api = {};
  long r;
  if (track_writes) {
    api.api = UFFD_API;
    api.features = kWantedFeatures | kFeatureWpAsync;
    r = sys::ioctl(fd, UFFDIO_API, &api);
    if (r == 0) {
      features_ = api.features;
      return true;
    }
  }
  api = {};
  api.api = UFFD_API;
  api.features = kWantedFeatures;
  r = sys::ioctl(fd, UFFDIO_API, &api);
  if (r == 0) {
    features_ = api.features;
    return true;
  }
  // Perhaps THREAD_ID is missing (it is optional); the failed call left the fd usable.
  api = {};
  api.api = UFFD_API;
  api.features = kRequiredFeatures;
  long r2 = sys::ioctl(fd, UFFDIO_API, &api);
  if (r2 == 0) {
    features_ = api.features;
    return true;
  }
  if (why) {
    why->api_errno = int(-r2);
    why->missing_features = kRequiredFeatures;
  }
  return false;
}

bool Userfaultfd::take(int fd, UffdOrigin origin) {
  protect_source_copies_ = false;
  fd_ = move_fd_high(fd);
  identity_.take(fd_);
  origin_ = origin;
  return true;
}

bool Userfaultfd::open(bool allow_user_mode_only, UffdOpenFailure* why, bool track_writes) {
  UffdOpenFailure local;
  if (!why) why = &local;
  const int flags = O_CLOEXEC | O_NONBLOCK;

  long fd = sys::call6(SYS_userfaultfd, flags);
  if (fd >= 0) {
    if (handshake(int(fd), why, track_writes)) {
      return take(int(fd), UffdOrigin::kSyscall);
    }
    sys::close(int(fd));
  } else {
    why->syscall_errno = int(-fd);
  }

  long dev = sys::openat(AT_FDCWD, "/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev >= 0) {
    fd = sys::ioctl(int(dev), USERFAULTFD_IOC_NEW, reinterpret_cast<void*>(long(flags)));
    sys::close(int(dev));
    if (fd >= 0) {
      if (handshake(int(fd), why, track_writes)) {
        return take(int(fd), UffdOrigin::kDevice);
      }
      sys::close(int(fd));
    } else {
      why->device_errno = int(-fd);
    }
  } else {
    why->device_errno = int(-dev);
  }

  if (allow_user_mode_only) {
    fd = sys::call6(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);
    if (fd >= 0) {
      if (handshake(int(fd), why, track_writes)) {
        return take(int(fd), UffdOrigin::kUserModeOnly);
      }
      sys::close(int(fd));
    } else {
      why->user_mode_errno = int(-fd);
    }
  }
  return false;
}

void Userfaultfd::adopt(int fd, uint64_t features, UffdOrigin origin) {
  fd_ = fd;
  identity_.take(fd);
  features_ = features;
  origin_ = origin;
}

void Userfaultfd::close() {
  if (fd_ >= 0 && identity_.still_valid()) sys::close(fd_);
  fd_ = -1;
  identity_ = FdIdentity{};
  features_ = 0;
  origin_ = UffdOrigin::kNone;
  protect_source_copies_ = false;
}

int Userfaultfd::register_missing(uintptr_t start, size_t len, uint64_t* ioctls) {
  uffdio_register reg = {};
  reg.range.start = start;
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | (tracks_writes() ? UFFDIO_REGISTER_MODE_WP : 0);
  long r = sys::ioctl(fd_, UFFDIO_REGISTER, &reg);
  if (r == 0 && ioctls) *ioctls = reg.ioctls;
  return int(r);
}

int Userfaultfd::unregister(uintptr_t start, size_t len) {
  uffdio_range range = {start, len};
  return int(sys::ioctl(fd_, UFFDIO_UNREGISTER, &range));
}

namespace {

// COPY and ZEROPAGE report the same way: the ioctl's return says whether it failed, the result
// field (output only) says how many bytes were done or the negative errno.
FillResult interpret(long r, int64_t result) {
  if (r == 0) return {FillStatus::kDone, size_t(result), 0};
  switch (int(-r)) {
    case EEXIST: return {FillStatus::kExists, 0, EEXIST};
    case EAGAIN:
      if (result > 0) return {FillStatus::kPartial, size_t(result), EAGAIN};
      return {FillStatus::kEventPending, 0, EAGAIN};
    case ENOENT: return {FillStatus::kNoEntry, 0, ENOENT};
    case ESRCH: return {FillStatus::kExiting, 0, ESRCH};
    default: return {FillStatus::kError, 0, int(-r)};
  }
}

}  // namespace

FillResult Userfaultfd::copy_mode(uintptr_t dst, const void* src, size_t len, bool wake, bool write_protect) {
  uffdio_copy c = {};
  c.dst = dst;
  c.src = reinterpret_cast<uintptr_t>(src);
  c.len = len;
  c.mode = (wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE) | (write_protect ? UFFDIO_COPY_MODE_WP : 0);
  long r = sys::ioctl(fd_, UFFDIO_COPY, &c);
  return interpret(r, c.copy);
}

FillResult Userfaultfd::zeropage(uintptr_t dst, size_t len, bool wake) {
  uffdio_zeropage z = {};
  z.range.start = dst;
  z.range.len = len;
  z.mode = wake ? 0 : UFFDIO_ZEROPAGE_MODE_DONTWAKE;
  long r = sys::ioctl(fd_, UFFDIO_ZEROPAGE, &z);
  return interpret(r, z.zeropage);
}

int Userfaultfd::wake(uintptr_t start, size_t len) {
  uffdio_range range = {start, len};
  return int(sys::ioctl(fd_, UFFDIO_WAKE, &range));
}

long Userfaultfd::read_messages(uffd_msg* msgs, size_t max) {
  long r = sys::read(fd_, msgs, max * sizeof(uffd_msg));
  if (r == -EAGAIN) return 0;
  if (r < 0) return r;
  return r / long(sizeof(uffd_msg));
}

}  // namespace uffdlazy
