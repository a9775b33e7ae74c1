// CallSiteTable: return addresses to (module, offset) through /proc/self/maps, checked against
// the dynamic loader's own view (dladdr), and per-site ordinals.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/pager/call_site_table.h"

using uffdlazy::CallSiteTable;
using uffdlazy::SiteId;

namespace {

__attribute__((noinline)) int local_function(int x) { return x * 3 + 1; }

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

std::string real(const char* p) {
  char buf[PATH_MAX];
  return realpath(p, buf) ? std::string(buf) : std::string(p);
}

TEST(CallSiteTable, ResolvesAFunctionOfTheTestExecutable) {
  CallSiteTable t;
  ASSERT_EQ(t.init(), 0);
  // Somewhere inside the function, as a return address would be.
  const uintptr_t addr = reinterpret_cast<uintptr_t>(&local_function) + 3;
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(addr), &info), 0);

  SiteId s = t.resolve(addr);
  ASSERT_TRUE(s.known());
  EXPECT_EQ(std::string(t.module_path(s.module)), self_exe());
  EXPECT_EQ(t.module_path_length(s.module), self_exe().size());
  EXPECT_EQ(t.module_base(s.module), reinterpret_cast<uintptr_t>(info.dli_fbase));
  EXPECT_EQ(s.offset, addr - reinterpret_cast<uintptr_t>(info.dli_fbase));
  EXPECT_EQ(t.maps_reads(), 1u);
}

// libc's own definition of `name`: under a sanitizer, &::malloc and &::write are the runtime's
// interceptors, linked into the test executable.
void* libc_function(const char* name) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (!libc) return nullptr;
  void* fn = dlsym(libc, name);
  dlclose(libc);  // only drops the reference dlopen added: libc stays
  return fn;
}

TEST(CallSiteTable, ResolvesLibcToLibc) {
  CallSiteTable t;
  ASSERT_EQ(t.init(), 0);
  const uintptr_t in_exe = reinterpret_cast<uintptr_t>(&local_function);
  void* const libc_malloc = libc_function("malloc");
  for (void* fn : {libc_function("getpid"), libc_function("write"), libc_malloc}) {
    ASSERT_NE(fn, nullptr);
    const uintptr_t addr = reinterpret_cast<uintptr_t>(fn) + 1;
    Dl_info info{};
    ASSERT_NE(dladdr(reinterpret_cast<void*>(addr), &info), 0);
    ASSERT_NE(strstr(info.dli_fname, "libc"), nullptr) << info.dli_fname;
    SiteId s = t.resolve(addr);
    ASSERT_TRUE(s.known());
    EXPECT_EQ(std::string(t.module_path(s.module)), real(info.dli_fname));
    EXPECT_EQ(s.offset, addr - reinterpret_cast<uintptr_t>(info.dli_fbase));
    EXPECT_NE(s.module, t.resolve(in_exe).module);
  }
  // One read of /proc/self/maps found every module: all three libc functions are one module.
  EXPECT_EQ(t.maps_reads(), 1u);
  EXPECT_EQ(t.resolve(reinterpret_cast<uintptr_t>(libc_function("getpid"))).module,
            t.resolve(reinterpret_cast<uintptr_t>(libc_malloc)).module);
  EXPECT_GE(t.module_count(), 2u);
}

TEST(CallSiteTable, RereadsMapsOnlyForUnknownAddresses) {
  CallSiteTable t;
  ASSERT_EQ(t.init(), 0);
  EXPECT_TRUE(t.resolve(reinterpret_cast<uintptr_t>(&local_function)).known());
  EXPECT_EQ(t.maps_reads(), 1u);
  EXPECT_TRUE(t.resolve(reinterpret_cast<uintptr_t>(&local_function) + 10).known());
  EXPECT_TRUE(t.resolve(reinterpret_cast<uintptr_t>(&::getpid)).known());
  EXPECT_EQ(t.maps_reads(), 1u);

  // Data is in no executable mapping: unknown, after one more look.
  int on_stack = 0;
  SiteId s = t.resolve(reinterpret_cast<uintptr_t>(&on_stack));
  EXPECT_FALSE(s.known());
  EXPECT_EQ(s.module, -1);
  EXPECT_EQ(t.maps_reads(), 2u);
  EXPECT_FALSE(t.resolve(0).known());
  EXPECT_EQ(t.maps_reads(), 3u);

  // Executable but not a file (JIT code): unknown, and cached as such.
  void* jit = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (jit != MAP_FAILED) {
    EXPECT_FALSE(t.resolve(reinterpret_cast<uintptr_t>(jit) + 8).known());
    EXPECT_EQ(t.maps_reads(), 4u);
    EXPECT_FALSE(t.resolve(reinterpret_cast<uintptr_t>(jit) + 16).known());
    EXPECT_EQ(t.maps_reads(), 4u);
    munmap(jit, 4096);
  }
  // Modules keep their indices across re-reads.
  const SiteId again = t.resolve(reinterpret_cast<uintptr_t>(&local_function));
  EXPECT_EQ(std::string(t.module_path(again.module)), self_exe());
}

TEST(CallSiteTable, OrdinalsCountPerSite) {
  CallSiteTable t;
  ASSERT_EQ(t.init(), 0);
  const SiteId a = t.resolve(reinterpret_cast<uintptr_t>(&local_function) + 5);
  const SiteId b = t.resolve(reinterpret_cast<uintptr_t>(&local_function) + 6);
  const SiteId c = t.resolve(reinterpret_cast<uintptr_t>(&::getpid) + 5);
  ASSERT_TRUE(a.known() && b.known() && c.known());
  const SiteId c_same_offset{c.module, a.offset};  // same offset, other module: another site

  EXPECT_EQ(t.ordinal_count(a), 0u);
  EXPECT_EQ(t.next_ordinal(a), 0u);
  EXPECT_EQ(t.next_ordinal(a), 1u);
  EXPECT_EQ(t.next_ordinal(b), 0u);
  EXPECT_EQ(t.next_ordinal(a), 2u);
  EXPECT_EQ(t.next_ordinal(c), 0u);
  EXPECT_EQ(t.next_ordinal(c_same_offset), 0u);
  EXPECT_EQ(t.next_ordinal(b), 1u);
  EXPECT_EQ(t.next_ordinal(c_same_offset), 1u);
  EXPECT_EQ(t.ordinal_count(a), 3u);
  EXPECT_EQ(t.ordinal_count(b), 2u);
  EXPECT_EQ(t.ordinal_count(c), 1u);
  EXPECT_EQ(t.ordinal_sites(), 4u);

  // Unknown sites have no ordinal.
  EXPECT_EQ(t.next_ordinal(SiteId{}), CallSiteTable::kNoOrdinal);
  EXPECT_EQ(t.ordinal_count(SiteId{}), 0u);

  // record(): resolve and count in one step.
  uint32_t ord = 77;
  SiteId r = t.record(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(&local_function) + 5), &ord);
  EXPECT_EQ(r.module, a.module);
  EXPECT_EQ(r.offset, a.offset);
  EXPECT_EQ(ord, 3u);
  int on_stack;
  r = t.record(&on_stack, &ord);
  EXPECT_FALSE(r.known());
  EXPECT_EQ(ord, CallSiteTable::kNoOrdinal);
}

TEST(CallSiteTable, FullOrdinalTableSaysNoOrdinal) {
  CallSiteTable t;
  ASSERT_EQ(t.init(16), 0);  // room for 12 sites
  const SiteId base = t.resolve(reinterpret_cast<uintptr_t>(&local_function));
  ASSERT_TRUE(base.known());
  for (uint64_t i = 0; i < 12; i++) ASSERT_EQ(t.next_ordinal(SiteId{base.module, i * 8}), 0u) << i;
  EXPECT_EQ(t.next_ordinal(SiteId{base.module, 12 * 8}), CallSiteTable::kNoOrdinal);
  EXPECT_EQ(t.ordinal_sites(), 12u);
  // Known sites keep counting.
  for (uint64_t i = 0; i < 12; i++) ASSERT_EQ(t.next_ordinal(SiteId{base.module, i * 8}), 1u) << i;
  EXPECT_EQ(t.init(0), -EINVAL);
}

TEST(CallSiteTable, ConcurrentOrdinalsAreDistinct) {
  CallSiteTable t;
  ASSERT_EQ(t.init(), 0);
  const SiteId a = t.resolve(reinterpret_cast<uintptr_t>(&local_function));
  const SiteId b = t.resolve(reinterpret_cast<uintptr_t>(&::getpid));
  constexpr int kThreads = 8, kEach = 2000;
  std::vector<std::vector<uint32_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < kEach; j++) {
        got[i].push_back(t.next_ordinal(a));
        // Resolving concurrently too (a cache hit).
        if (t.resolve(reinterpret_cast<uintptr_t>(&::getpid)).module != b.module) got[i].push_back(~0u);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint32_t> all;
  for (auto& v : got) all.insert(all.end(), v.begin(), v.end());
  ASSERT_EQ(all.size(), size_t(kThreads * kEach));
  std::sort(all.begin(), all.end());
  for (uint32_t i = 0; i < all.size(); i++) ASSERT_EQ(all[i], i);
  EXPECT_EQ(t.ordinal_count(a), uint32_t(kThreads * kEach));
}

TEST(CallSiteTable, PackRoundTrips) {
  const SiteId s{5, 0x123456789abcull};
  const uint64_t v = CallSiteTable::pack(s);
  EXPECT_NE(v, 0u);
  const SiteId u = CallSiteTable::unpack(v);
  EXPECT_EQ(u.module, 5);
  EXPECT_EQ(u.offset, 0x123456789abcull);
  EXPECT_EQ(CallSiteTable::pack(SiteId{}), 0u);
  EXPECT_FALSE(CallSiteTable::unpack(0).known());
  EXPECT_EQ(CallSiteTable::unpack(CallSiteTable::pack(SiteId{0, 0})).module, 0);
  EXPECT_EQ(CallSiteTable::pack(SiteId{1, uint64_t(1) << 48}), 0u);  // offset too large
  EXPECT_EQ(local_function(2), 7);
}

}  // namespace
