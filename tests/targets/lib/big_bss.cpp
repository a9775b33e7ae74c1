// A shared library with a 16 MiB .bss, dlopen'ed by tests/targets/libc_intercept.cpp: ld.so maps
// its .bss with its own private mmap, which no libc hook sees.
#include <cstddef>

namespace {
unsigned char g_big[16 << 20];
}

extern "C" __attribute__((visibility("default"))) void* big_bss_address() { return g_big; }

// Adds up the .bss (which must read as zeros, then as `value` everywhere), then fills it with value.
extern "C" __attribute__((visibility("default"))) unsigned long big_bss_fill(unsigned value) {
  unsigned long sum = 0;
  for (size_t i = 0; i < sizeof g_big; i += 1024) sum += g_big[i];
  for (size_t i = 0; i < sizeof g_big; i += 512) g_big[i] = (unsigned char)value;
  return sum;
}
