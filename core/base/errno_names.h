// Names and messages of the errno values the tools and the shim meet, without the C library
// (strerror takes the locale): usable in the shim's monitor and in the freestanding restorer.
#pragma once

#include <cerrno>

namespace uffdlazy {

// "EPERM", or "E?" for a value not listed.
constexpr const char* errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case EDQUOT: return "EDQUOT";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";
    case ECHILD: return "ECHILD";
    case EXDEV: return "EXDEV";
    case ETXTBSY: return "ETXTBSY";
    case ESPIPE: return "ESPIPE";
    case EMLINK: return "EMLINK";
    case EPIPE: return "EPIPE";
    case ERANGE: return "ERANGE";
    case ELOOP: return "ELOOP";
    case EOVERFLOW: return "EOVERFLOW";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EPROTO: return "EPROTO";
    default: return "E?";
  }
}

// "Operation not permitted", or "Unknown error".
constexpr const char* errno_message(int err) {
  switch (err) {
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case ESRCH: return "No such process";
    case EINTR: return "Interrupted system call";
    case EIO: return "Input/output error";
    case EBADF: return "Bad file descriptor";
    case EAGAIN: return "Resource temporarily unavailable";
    case ENOMEM: return "Cannot allocate memory";
    case EACCES: return "Permission denied";
    case EFAULT: return "Bad address";
    case EBUSY: return "Device or resource busy";
    case EEXIST: return "File exists";
    case ENODEV: return "No such device";
    case EINVAL: return "Invalid argument";
    case ENFILE: return "Too many open files in system";
    case EMFILE: return "Too many open files";
    case ENOTTY: return "Inappropriate ioctl for device";
    case EFBIG: return "File too large";
    case ENOSPC: return "No space left on device";
    case EROFS: return "Read-only file system";
    case ENOSYS: return "Function not implemented";
    case EDQUOT: return "Disk quota exceeded";
    case ENAMETOOLONG: return "File name too long";
    case EISDIR: return "Is a directory";
    case ENOTDIR: return "Not a directory";
    case ENXIO: return "No such device or address";
    case E2BIG: return "Argument list too long";
    case ENOEXEC: return "Exec format error";
    case ECHILD: return "No child processes";
    case EXDEV: return "Invalid cross-device link";
    case ETXTBSY: return "Text file busy";
    case ESPIPE: return "Illegal seek";
    case EMLINK: return "Too many links";
    case EPIPE: return "Broken pipe";
    case ERANGE: return "Numerical result out of range";
    case ELOOP: return "Too many levels of symbolic links";
    case EOVERFLOW: return "Value too large for defined data type";
    case EOPNOTSUPP: return "Operation not supported";
    case ETIMEDOUT: return "Connection timed out";
    case ENOTEMPTY: return "Directory not empty";
    case EPROTO: return "Protocol error";
    default: return "Unknown error";
  }
}

}  // namespace uffdlazy
