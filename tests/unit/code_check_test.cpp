// The detour's checks of libc's bodies (preload/code_check.h): the real x86_64 bytes of this
// machine's libc pass, Debian 12 arm64 glibc 2.36's wrapper shapes pass, and anything else is
// refused, so that a libc that is not the code the hooks reproduce is never patched.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <elf.h>
#include <sys/syscall.h>

#include <cstring>
#include <vector>

#include "preload/code_check.h"

namespace uffdlazy::detour {
namespace {

std::vector<unsigned char> words(std::initializer_list<uint32_t> w) {
  std::vector<unsigned char> out(w.size() * 4);
  size_t i = 0;
  for (uint32_t v : w) {
    memcpy(out.data() + i, &v, 4);
    i += 4;
  }
  return out;
}

// glibc 2.36 x86_64 munmap, as in Debian 12's libc.so.6: mov $0xb,%eax; syscall; cmp; jae; ret;
// mov errno..; neg; mov; or; ret.
const std::vector<unsigned char> kX86Munmap = {0xb8, 0x0b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0,
                                               0xff, 0xff, 0x73, 0x01, 0xc3, 0x48, 0x8b, 0x0d, 0xc9, 0x13, 0x0d,
                                               0x00, 0xf7, 0xd8, 0x64, 0x89, 0x01, 0x48, 0x83, 0xc8, 0xff, 0xc3};

TEST(CodeCheck, X86WrapperShapeIsAccepted) {
  EXPECT_EQ(check_syscall_wrapper(Arch::kX86_64, kX86Munmap.data(), kX86Munmap.size(), 11), nullptr);
}

TEST(CodeCheck, X86WrongNumberOrNoSyscallOrTooSmallIsRefused) {
  EXPECT_NE(check_syscall_wrapper(Arch::kX86_64, kX86Munmap.data(), kX86Munmap.size(), 9), nullptr);
  std::vector<unsigned char> b = kX86Munmap;
  alter_for_test(Arch::kX86_64, b.data(), b.size());
  EXPECT_NE(check_syscall_wrapper(Arch::kX86_64, b.data(), b.size(), 11), nullptr);
  EXPECT_NE(check_syscall_wrapper(Arch::kX86_64, kX86Munmap.data(), 13, 11), nullptr);  // smaller than the jump
  std::vector<unsigned char> twice = kX86Munmap;
  twice.insert(twice.end(), {0x0f, 0x05});
  EXPECT_NE(check_syscall_wrapper(Arch::kX86_64, twice.data(), twice.size(), 11), nullptr);
  std::vector<unsigned char> huge(600, 0x90);
  memcpy(huge.data(), kX86Munmap.data(), kX86Munmap.size());
  EXPECT_NE(check_syscall_wrapper(Arch::kX86_64, huge.data(), huge.size(), 11), nullptr);
}

#if defined(__x86_64__)
TEST(CodeCheck, ThisMachinesLibcBodiesAreAccepted) {
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  ASSERT_NE(libc, nullptr);
  struct {
    const char* name;
    long nr;
  } bodies[] = {{"mmap64", SYS_mmap}, {"munmap", SYS_munmap}, {"mremap", SYS_mremap}, {"madvise", SYS_madvise},
                {"brk", SYS_brk}};
  for (const auto& b : bodies) {
    void* f = dlvsym(libc, b.name, "GLIBC_2.2.5");
    ASSERT_NE(f, nullptr) << b.name;
    Dl_info info;
    const void* sym = nullptr;
    ASSERT_NE(dladdr1(f, &info, const_cast<void**>(&sym), RTLD_DL_SYMENT), 0);
    size_t size = static_cast<const Elf64_Sym*>(sym)->st_size;
    EXPECT_EQ(check_syscall_wrapper(Arch::kX86_64, static_cast<const unsigned char*>(f), size, b.nr), nullptr)
        << b.name << " (" << size << " bytes)";
  }
  dlclose(libc);
}
#endif

// arm64 glibc 2.36 munmap shape: mov x8,#215; svc #0; cmn x0,#0xfff; b.cs <err>; ret; ...
TEST(CodeCheck, Aarch64WrapperShapeIsAccepted) {
  auto b = words({0xd2801ae8, 0xd4000001, 0xb13ffc1f, 0x54000042, 0xd65f03c0, 0xd503201f, 0xd503201f});
  EXPECT_EQ(check_syscall_wrapper(Arch::kAarch64, b.data(), b.size(), 215), nullptr);
  EXPECT_NE(check_syscall_wrapper(Arch::kAarch64, b.data(), b.size(), 216), nullptr);
  alter_for_test(Arch::kAarch64, b.data(), b.size());
  EXPECT_NE(check_syscall_wrapper(Arch::kAarch64, b.data(), b.size(), 215), nullptr);
  auto svc_first = words({0xd4000001, 0xd2801ae8, 0xd65f03c0, 0xd503201f});
  EXPECT_NE(check_syscall_wrapper(Arch::kAarch64, svc_first.data(), svc_first.size(), 215), nullptr);
  auto small = words({0xd2801ae8, 0xd4000001, 0xd65f03c0});
  EXPECT_NE(check_syscall_wrapper(Arch::kAarch64, small.data(), small.size(), 215), nullptr);
}

TEST(CodeCheck, JumpsEncodeTheirTarget) {
  unsigned char j[16];
  encode_jump(Arch::kX86_64, 0x1122334455667788ull, j);
  const unsigned char x86[6] = {0xff, 0x25, 0, 0, 0, 0};
  EXPECT_EQ(memcmp(j, x86, 6), 0);
  uint64_t target;
  memcpy(&target, j + 6, 8);
  EXPECT_EQ(target, 0x1122334455667788ull);
  encode_jump(Arch::kAarch64, 0x1122334455667788ull, j);
  uint32_t w[2];
  memcpy(w, j, 8);
  EXPECT_EQ(w[0], 0x58000050u);  // ldr x16, #8
  EXPECT_EQ(w[1], 0xd61f0200u);  // br x16
  memcpy(&target, j + 8, 8);
  EXPECT_EQ(target, 0x1122334455667788ull);
  EXPECT_EQ(encode_near_jump(Arch::kX86_64, 0x1000, 0x2000, j), 5u);
  int32_t rel;
  memcpy(&rel, j + 1, 4);
  EXPECT_EQ(j[0], 0xe9);
  EXPECT_EQ(rel, 0x2000 - 0x1005);
  EXPECT_EQ(encode_near_jump(Arch::kX86_64, 0x1000, 0x100001000ull, j), 0u);
  EXPECT_EQ(encode_near_jump(Arch::kAarch64, 0x1000, 0x2000, j), 4u);
  memcpy(w, j, 4);
  EXPECT_EQ(w[0], 0x14000000u | (0x1000 >> 2));
  EXPECT_EQ(encode_near_jump(Arch::kAarch64, 0x1000, 0x10000000ull, j), 0u);
}

TEST(CodeCheck, LoaderHookNeedsABareReturnAndPadding) {
  // ld.so 2.36 x86_64 _dl_debug_state: ret, then data16 cs nopw, nopl.
  const unsigned char good[16] = {0xc3, 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x0f, 0x1f, 0x40, 0x00};
  EXPECT_EQ(check_bare_return(Arch::kX86_64, good, 14), nullptr);
  EXPECT_EQ(check_bare_return(Arch::kX86_64, good, 5), nullptr);
  unsigned char next_function[16];
  memcpy(next_function, good, 16);
  next_function[4] = 0x48;  // code, not padding
  EXPECT_NE(check_bare_return(Arch::kX86_64, next_function, 14), nullptr);
  unsigned char not_ret[16];
  memcpy(not_ret, good, 16);
  not_ret[0] = 0x55;
  EXPECT_NE(check_bare_return(Arch::kX86_64, not_ret, 5), nullptr);
  auto a64 = words({0xd65f03c0, 0xd503201f, 0xd503201f, 0xd503201f});
  EXPECT_EQ(check_bare_return(Arch::kAarch64, a64.data(), 16), nullptr);
  auto a64_code = words({0xd65f03c0, 0xa9bf7bfd, 0xd503201f, 0xd503201f});
  EXPECT_EQ(check_bare_return(Arch::kAarch64, a64_code.data(), 4), nullptr);  // a near branch replaces only ret
  EXPECT_NE(check_bare_return(Arch::kAarch64, a64_code.data(), 16), nullptr);
}

}  // namespace
}  // namespace uffdlazy::detour
