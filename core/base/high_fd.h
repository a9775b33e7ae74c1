// Moves one of the shim's descriptors out of the way of the program's: programs expect the numbers
// they open to be the lowest free ones, loop over low numbers, dup2 onto them. The shim keeps its
// descriptors at high numbers, close-on-exec, and checks by identity (device and inode) that a
// number still names its file before every use from a program thread.
#pragma once

#include <cstdint>

namespace uffdlazy {

// Duplicates fd to a high free number (close-on-exec) and closes the original. Returns the new
// number, or fd itself if it could not be moved.
int move_fd_high(int fd);

// The lowest number move_fd_high aims for: 1000, or three quarters of a smaller RLIMIT_NOFILE.
long high_fd_floor();

struct FdIdentity {
  int fd = -1;
  uint64_t dev = 0;
  uint64_t ino = 0;

  // Records what fd names now. False if it is not open.
  bool take(int descriptor);
  // True if the number still names the same file.
  bool still_valid() const;
};

}  // namespace uffdlazy
