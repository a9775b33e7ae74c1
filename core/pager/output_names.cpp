#include "core/pager/output_names.h"

#include <cstring>

namespace uffdlazy::pager {

bool per_process_name(const char* name) {
  for (const char* p = name; *p; p++) {
    if (p[0] == '%' && p[1] == 'p') return true;
    if (p[0] == '%' && p[1] == '%') p++;
  }
  return false;
}

bool expand_name(const char* name, long pid, char* out, size_t cap) {
  size_t n = 0;
  auto put = [&](char c) {
    if (n + 1 >= cap) return false;
    out[n++] = c;
    return true;
  };
  for (const char* p = name; *p; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      char digits[24];
      int k = 0;
      for (unsigned long v = (unsigned long)pid; k == 0 || v; v /= 10) digits[k++] = char('0' + v % 10);
      while (k)
        if (!put(digits[--k])) return false;
      p++;
    } else if (p[0] == '%' && p[1] == '%') {
      if (!put('%')) return false;
      p++;
    } else if (!put(*p)) {
      return false;
    }
  }
  out[n] = 0;
  return true;
}

}  // namespace uffdlazy::pager
