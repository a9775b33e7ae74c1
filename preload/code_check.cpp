#include "preload/code_check.h"

#include <cstring>

namespace uffdlazy::detour {

namespace {

constexpr size_t kLargestWrapper = 512;
constexpr uint32_t kSvc0 = 0xd4000001;     // svc #0
constexpr uint32_t kBrk0 = 0xd4200000;     // brk #0
constexpr uint32_t kRet = 0xd65f03c0;      // ret
constexpr uint32_t kNop = 0xd503201f;      // nop

uint32_t word_at(const unsigned char* p) {
  uint32_t w;
  memcpy(&w, p, 4);
  return w;
}

// movz x8, #nr (nr < 65536): the aarch64 system call number load.
uint32_t movz_x8(long nr) { return 0xd2800008u | (uint32_t(nr) << 5); }

// Length of the x86_64 no-op instruction at p (GCC's and binutils' padding forms), or 0.
size_t x86_nop_length(const unsigned char* p, size_t left) {
  size_t prefixes = 0;
  while (prefixes < left && (p[prefixes] == 0x66 || p[prefixes] == 0x2e)) prefixes++;
  const unsigned char* q = p + prefixes;
  const size_t rest = left - prefixes;
  if (rest >= 1 && (q[0] == 0x90 || q[0] == 0xcc) && (prefixes == 0 || q[0] == 0x90)) return prefixes + 1;
  if (rest < 3 || q[0] != 0x0f || q[1] != 0x1f) return 0;
  // 0f 1f /0 with a memory operand: the ModRM byte says how long the operand is.
  const unsigned char modrm = q[2];
  if ((modrm & 0x38) != 0) return 0;
  size_t len = 3;
  const bool sib = (modrm & 7) == 4;
  if (sib) len++;
  switch (modrm >> 6) {
    case 0: break;
    case 1: len += 1; break;
    case 2: len += 4; break;
    default: return 0;
  }
  if (len > rest) return 0;
  for (size_t i = 3; i < len; i++) {
    if (q[i] != 0) return 0;  // padding encodes zero displacements
  }
  return prefixes + len;
}

}  // namespace

size_t jump_size(Arch arch) { return arch == Arch::kX86_64 ? 14 : 16; }

void encode_jump(Arch arch, uintptr_t target, unsigned char* out) {
  if (arch == Arch::kX86_64) {
    const unsigned char jmp[6] = {0xff, 0x25, 0, 0, 0, 0};  // jmp *0(%rip): the address follows
    memcpy(out, jmp, 6);
    memcpy(out + 6, &target, 8);
    return;
  }
  const uint32_t ldr_x16 = 0x58000050;  // ldr x16, #8
  const uint32_t br_x16 = 0xd61f0200;   // br x16
  memcpy(out, &ldr_x16, 4);
  memcpy(out + 4, &br_x16, 4);
  memcpy(out + 8, &target, 8);
}

const char* check_syscall_wrapper(Arch arch, const unsigned char* body, size_t size, long nr) {
  if (size < jump_size(arch)) return "is smaller than the jump that would replace it";
  if (size > kLargestWrapper) return "is larger than a system call wrapper";
  if (nr < 0 || nr > 0xffff) return "has a system call number out of range";
  if (arch == Arch::kX86_64) {
    // mov $nr,%eax; syscall  =  b8 <nr as 4 bytes> 0f 05
    unsigned char want[7] = {0xb8, uint8_t(nr), uint8_t(nr >> 8), 0, 0, 0x0f, 0x05};
    size_t loads = 0, entries = 0;
    for (size_t i = 0; i + 2 <= size; i++) {
      if (body[i] == 0x0f && body[i + 1] == 0x05) entries++;
      if (i + sizeof want <= size && !memcmp(body + i, want, sizeof want)) loads++;
    }
    if (loads != 1) return "does not load its system call number and enter the kernel as expected";
    if (entries != 1) return "enters the kernel more than once";
    return nullptr;
  }
  if (size % 4) return "is not a whole number of instructions";
  const uint32_t load = movz_x8(nr);
  size_t loads = 0, entries = 0;
  bool loaded_before_entry = false;
  for (size_t i = 0; i < size; i += 4) {
    const uint32_t w = word_at(body + i);
    if (w == load) loads++;
    if ((w & 0xffe0001f) == 0xd4000001) {  // svc #imm
      entries++;
      if (w == kSvc0 && loads == 1) loaded_before_entry = true;
    }
  }
  if (loads != 1 || !loaded_before_entry) return "does not load its system call number and enter the kernel as expected";
  if (entries != 1) return "enters the kernel more than once";
  return nullptr;
}

size_t encode_near_jump(Arch arch, uintptr_t from, uintptr_t to, unsigned char* out) {
  if (arch == Arch::kX86_64) {
    const int64_t rel = int64_t(to) - int64_t(from + 5);
    if (rel < INT32_MIN || rel > INT32_MAX) return 0;
    const int32_t rel32 = int32_t(rel);
    out[0] = 0xe9;
    memcpy(out + 1, &rel32, 4);
    return 5;
  }
  const int64_t rel = int64_t(to) - int64_t(from);
  if ((rel & 3) || rel < -(int64_t(1) << 27) || rel >= (int64_t(1) << 27)) return 0;
  const uint32_t b = 0x14000000u | (uint32_t(rel >> 2) & 0x03ffffffu);
  memcpy(out, &b, 4);
  return 4;
}

const char* check_bare_return(Arch arch, const unsigned char* body, size_t needed) {
  constexpr size_t kReadable = 16;
  if (needed > kReadable) return "has no room for the jump";
  if (arch == Arch::kX86_64) {
    if (body[0] != 0xc3) return "is not a bare return";
    size_t i = 1;
    while (i < needed) {
      const size_t n = x86_nop_length(body + i, kReadable - i);
      if (!n) return "is not followed by padding the jump may overwrite";
      i += n;
    }
    return nullptr;
  }
  if (word_at(body) != kRet) return "is not a bare return";
  for (size_t i = 4; i < needed; i += 4) {
    const uint32_t w = word_at(body + i);
    if (w != kNop && w != 0 && (w & 0xffe0001f) != kBrk0) return "is not followed by padding the jump may overwrite";
  }
  return nullptr;
}

void alter_for_test(Arch arch, unsigned char* body, size_t size) {
  if (arch == Arch::kX86_64) {
    for (size_t i = 0; i + 2 <= size; i++) {
      if (body[i] == 0x0f && body[i + 1] == 0x05) body[i] = body[i + 1] = 0xcc;
    }
    return;
  }
  for (size_t i = 0; i + 4 <= size; i += 4) {
    if (word_at(body + i) == kSvc0) memcpy(body + i, &kBrk0, 4);
  }
}

}  // namespace uffdlazy::detour
