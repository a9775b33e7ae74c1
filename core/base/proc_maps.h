// Reads /proc/self/maps line by line with raw system calls into a fixed buffer: usable inside an
// interposed call (no allocation, no stdio, no loader lock).
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

struct MapsEntry {
  uintptr_t start;
  uintptr_t end;  // exclusive
  char perms[5];  // "rw-p"
  uint64_t offset;
  uint64_t inode;
  const char* path;  // the rest of the line ("" for anonymous memory), not NUL-terminated
  size_t path_length;
};

class ProcMaps {
 public:
  // Calls visit(const MapsEntry&) for every mapping, in address order; visit returns false to
  // stop. False if /proc/self/maps could not be read. Lines longer than the buffer are skipped.
  template <class Visit>
  bool for_each(Visit&& visit);

 private:
  static constexpr size_t kBufSize = 8192;
  bool open_maps();
  long fill_at(size_t have);
  void close_maps();
  static bool parse(const char* line, size_t n, MapsEntry* out);

  char buf_[kBufSize];
  int fd_ = -1;
};

template <class Visit>
bool ProcMaps::for_each(Visit&& visit) {
  if (!open_maps()) return false;
  size_t have = 0;
  bool skipping = false;  // inside a line longer than the buffer
  bool go_on = true;
  while (go_on) {
    const long r = fill_at(have);
    if (r <= 0) break;
    have += size_t(r);
    size_t line = 0;
    for (size_t i = 0; i < have && go_on; i++) {
      if (buf_[i] != '\n') continue;
      MapsEntry e;
      if (!skipping && parse(buf_ + line, i - line, &e)) go_on = visit(static_cast<const MapsEntry&>(e));
      skipping = false;
      line = i + 1;
    }
    if (line == 0 && have == kBufSize) {
      skipping = true;
      have = 0;
      continue;
    }
    for (size_t i = line; i < have; i++) buf_[i - line] = buf_[i];
    have -= line;
  }
  close_maps();
  return true;
}

}  // namespace uffdlazy
