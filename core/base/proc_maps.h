// Reading /proc/self/maps and /proc/self/smaps without allocating: raw system calls into a
// caller's buffer, one callback per line. Usable inside the hooks, in constructors and at exit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

struct MapsEntry {
  uintptr_t start = 0;
  uintptr_t end = 0;  // exclusive
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0;
  uint64_t inode = 0;
  const char* path = "";  // not NUL-terminated: path_length bytes; "" for anonymous memory
  size_t path_length = 0;

  bool path_is(const char* s) const;
  bool path_starts_with(const char* s) const;
  // Private memory that is not a file: no path, "[heap]", or a name given with PR_SET_VMA_ANON_NAME.
  bool private_anonymous() const;
};

// Parses a maps line (also the header line of each smaps entry). False for any other line.
bool parse_maps_line(const char* line, size_t n, MapsEntry* out);

// Calls fn(line, length, ctx) for each line of the file (without its newline); lines longer than
// the buffer are skipped. Returns 0 or -errno from opening the file.
int for_each_line(const char* path, char* buf, size_t cap, void (*fn)(const char*, size_t, void*), void* ctx);

}  // namespace uffdlazy
