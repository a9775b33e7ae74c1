// Cost of one mmap/munmap pair (and of madvise) made through libc, against the same system calls
// issued raw, in the same process. Run with and without the shim (scripts/coverage.sh). Three ways
// in: the raw system call; libc's own body (what malloc and every libc-internal caller reach; under
// the shim with UFFDLAZY_INTERCEPT=libc it jumps to the shim's hook); and the exported symbol `mmap`
// as a program calls it (under the shim, the shim's interposer).
#include <dlfcn.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace {

using MmapFn = void* (*)(void*, size_t, int, int, int, off_t);
using MunmapFn = int (*)(void*, size_t);
using MadviseFn = int (*)(void*, size_t, int);

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

long raw(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#endif
}

constexpr int kBatches = 101;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times `calls` calls of each way in turn, batch after batch, so that the VM's changing speed
// (other tenants, frequency) falls on every way alike; each batch starts with a different way and
// warms each up before timing it, since whichever runs first after another way pays for the
// switch. out[0] is the median per-call time of the first way; out[k] for the others is the
// median over batches of (way k - way 0) measured in the same batch: the VM's speed drifts by
// more than the shim adds (~3 us pairs, tens of ns added), and pairing within a batch cancels it.
template <class... Fn>
void per_call_ns(int calls, double* out, Fn&&... fns) {
  std::vector<std::function<void()>> ways = {std::function<void()>(fns)...};
  const size_t n = ways.size();
  std::vector<std::vector<double>> v(n);
  for (int b = 0; b < kBatches; b++) {
    for (size_t j = 0; j < n; j++) {
      const size_t k = (size_t(b) + j) % n;
      for (int i = 0; i < 8; i++) ways[k]();
      const uint64_t t0 = now_ns();
      for (int i = 0; i < calls; i++) ways[k]();
      v[k].push_back(double(now_ns() - t0) / calls);
    }
  }
  out[0] = median(v[0]);
  for (size_t k = 1; k < n; k++) {
    std::vector<double> diff(v[k].size());
    for (size_t b = 0; b < diff.size(); b++) diff[b] = v[k][b] - v[0][b];
    out[k] = median(diff);
  }
}

void pair_row(const char* what, size_t len, int calls, MmapFn libc_mmap, MunmapFn libc_munmap) {
  const int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
  double t[3];
  per_call_ns(
      calls, t, [&] { raw(SYS_munmap, raw(SYS_mmap, 0, long(len), prot, flags, -1, 0), long(len)); },
      [&] { libc_munmap(libc_mmap(nullptr, len, prot, flags, -1, 0), len); },
      [&] { munmap(mmap(nullptr, len, prot, flags, -1, 0), len); });
  std::printf("%-28s raw %8.0f ns   libc body %8.0f ns (%+6.0f)   symbol %8.0f ns (%+6.0f)\n", what, t[0],
              t[0] + t[1], t[1], t[0] + t[2], t[2]);
}

}  // namespace

int main() {
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  if (!libc) return 1;
  auto libc_mmap = reinterpret_cast<MmapFn>(dlsym(libc, "mmap64"));
  auto libc_munmap = reinterpret_cast<MunmapFn>(dlsym(libc, "munmap"));
  auto libc_madvise = reinterpret_cast<MadviseFn>(dlsym(libc, "madvise"));
  pair_row("mmap+munmap 4 KiB pair", 4096, 300, libc_mmap, libc_munmap);
  pair_row("mmap+munmap 1 MiB pair", 1 << 20, 100, libc_mmap, libc_munmap);
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  double t[2];
  per_call_ns(
      5000, t, [&] { raw(SYS_madvise, long(page), 4096, MADV_NORMAL); },
      [&] { libc_madvise(page, 4096, MADV_NORMAL); });
  std::printf("%-28s raw %8.0f ns   libc body %8.0f ns (%+6.0f)\n", "madvise(MADV_NORMAL)", t[0], t[0] + t[1],
              t[1]);
  // The interception alone, without the kernel's mapping work that makes a pair's time vary by more
  // than the interception costs: calls the kernel refuses at once (EINVAL).
  double m[3];
  per_call_ns(
      5000, m, [&] { raw(SYS_munmap, long(page), 0); }, [&] { libc_munmap(page, 0); }, [&] { munmap(page, 0); });
  std::printf("%-28s raw %8.0f ns   libc body %8.0f ns (%+6.0f)   symbol %8.0f ns (%+6.0f)\n",
              "munmap(len 0) (EINVAL)", m[0], m[0] + m[1], m[1], m[0] + m[2], m[2]);
  per_call_ns(
      5000, m, [&] { raw(SYS_mmap, 0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); },
      [&] { libc_mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); },
      [&] { mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); });
  std::printf("%-28s raw %8.0f ns   libc body %8.0f ns (%+6.0f)   symbol %8.0f ns (%+6.0f)\n",
              "mmap(len 0) (EINVAL)", m[0], m[0] + m[1], m[1], m[0] + m[2], m[2]);
  // What a program feels: malloc/free above the mmap threshold (pinned, so that it does not grow)
  // are an mmap/munmap pair inside libc.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  per_call_ns(500, t, [&] {
    void* p = malloc(512 * 1024);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  });
  std::printf("%-28s %8.0f ns\n", "malloc+free 512 KiB", t[0]);
  return 0;
}
