// Reading /proc files with raw system calls into fixed buffers, for the checkpoint thread (no
// allocation, no stdio: the program's threads are stopped wherever they were, perhaps holding
// libc's locks).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/line_writer.h"

namespace uffdlazy::ckpt {

// Reads a whole (small) file into buf, NUL-terminated; returns its length or -errno.
long read_small_file(const char* path, char* buf, size_t cap);
// readlink into buf, NUL-terminated; returns the length or -errno.
long read_link(const char* path, char* buf, size_t cap);
// The pids of the calling process's children (every thread's, /proc/self/task/*/children), in
// /proc's order (the order wait finds them in); at most cap, *overflow set if there were more.
uint32_t list_child_pids(int32_t* out, uint32_t cap, bool* overflow);

// Calls visit(line, length) for each line of a file of any size (lines longer than the buffer
// are cut). False if the file could not be opened.
class LineReader {
 public:
  static constexpr size_t kLongestLine = 1 << 16;  // a longer line is cut into pieces of this size
  template <class Visit>
  bool for_each(const char* path, Visit&& visit);

 private:
  bool open(const char* path);
  long fill(size_t have);
  void close();
  static constexpr size_t kBuf = kLongestLine;
  char buf_[kBuf];
  int fd_ = -1;
};

template <class Visit>
bool LineReader::for_each(const char* path, Visit&& visit) {
  if (!open(path)) return false;
  size_t have = 0;
  for (;;) {
    const long r = fill(have);
    if (r <= 0) {
      if (have) visit(static_cast<const char*>(buf_), have);
      break;
    }
    have += size_t(r);
    size_t line = 0;
    for (size_t i = 0; i < have; i++) {
      if (buf_[i] != '\n') continue;
      visit(static_cast<const char*>(buf_ + line), i - line);
      line = i + 1;
    }
    if (line == 0 && have == kBuf) {  // a line longer than the buffer: cut it
      visit(static_cast<const char*>(buf_), have);
      have = 0;
      continue;
    }
    __builtin_memmove(buf_, buf_ + line, have - line);
    have -= line;
  }
  close();
  return true;
}

// The value after "key" (e.g. "eventfd-count:") at the start of a line of text (fdinfo's), its
// leading blanks skipped; nullptr when no line has it.
const char* line_value(const char* text, const char* key);

// Appends a path to a one-line message, control characters (a newline in a file name) written as
// \n or \xNN so the message stays one line.
void append_path(LineWriter* w, const char* s, size_t n);

// Small parsing helpers over (text, length).
bool starts_with(const char* s, size_t n, const char* prefix);
// Parses an unsigned decimal (or hex with base 16) at *p, advancing it.
uint64_t parse_number(const char** p, const char* end, int base = 10);

}  // namespace uffdlazy::ckpt
