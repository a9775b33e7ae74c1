// Decimal digits without printf (no locale, no lock, usable anywhere in the shim).
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

// Writes the digits of v to out (room for 20) and returns how many; no terminator.
inline size_t format_u64(char* out, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

}  // namespace uffdlazy
