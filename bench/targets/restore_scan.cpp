// restore_scan: the program of the restore benchmarks (scripts/bench.sh). It maps one large
// anonymous region, always from the same call site, and either fills it with a known pattern (the
// run that is recorded) or touches some of its pages, in order or at random, checking each page it
// reads. How the memory gets its content is what the benchmark varies: restored by uffdlazy
// (lazily, under LD_PRELOAD), read(2) from a raw image of the region, mapped from that image, or
// left to the kernel (demand-zero, no content).
//
//   restore_scan fill  --mib N                 write the pattern, exit (record this run)
//   restore_scan image --mib N FILE            write the raw image of the pattern to FILE
//   restore_scan touch --mib N [--order seq|random] [--percent P] [--from lazy|read|mmap|zero]
//                      [--image FILE] [--wait-resident] [--idle-ms M]
//   restore_scan floor --mib N --image FILE [--hash] [--threads T]
//                      what installing the image costs the kernel at best, without any fault:
//                      the region is registered with a userfaultfd of its own and filled with
//                      UFFDIO_COPY from the mapped image, 256 pages per call (checking each page's
//                      XXH3 first with --hash), by T threads (1 or 2) taking runs in turn, as the
//                      shim's monitor (and its copy helper) do for long runs;
//                      beside it, the same region filled by read(2) of the image, timed the same way
//
// touch prints one line: pages, bad pages, and the time the program spent from start to the end
// of its reads. With --wait-resident it then waits until every page of the region is in place
// (mincore; nothing is touched) and prints how long that took from start, and with --idle-ms it
// then measures the CPU time the shim's threads (uffdlazy-mon, uffdlazy-copy) used while the program
// slept that long. Plain C++ and system calls: no uffdlazy code.
#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t word(uint64_t page, uint64_t w) {
  uint64_t x = (page << 16) ^ w ^ 0x243f6a8885a308d3ull;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 32);
}

void pattern(uint64_t page, uint64_t* out) {
  for (size_t w = 0; w < kPage / 8; w++) out[w] = word(page, w);
}

// The one call site every mode maps the region from: a restore matches it by site, ordinal and
// length.
__attribute__((noinline)) char* map_region(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("restore_scan: mmap");
    std::exit(3);
  }
  return static_cast<char*>(p);
}

int usage() {
  std::fprintf(stderr,
               "usage: restore_scan fill --mib N | image --mib N FILE | touch --mib N [--order seq|random] "
               "[--percent P] [--from lazy|read|mmap|zero] [--image FILE] [--wait-resident] [--idle-ms M] | "
               "floor --mib N --image FILE [--hash] [--threads 1|2]\n");
  return 2;
}

// CPU time (ns) of the threads whose name starts with `prefix` in this process (schedstat: ns
// precision), summed, or -1 if there is none.
int64_t thread_cpu_ns(const char* prefix) {
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  int64_t found = -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[64] = {}, stat[128] = {};
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = 0;
    if (strncmp(comm, prefix, strlen(prefix)) != 0) continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n > 0) found = (found < 0 ? 0 : found) + int64_t(strtoull(stat, nullptr, 10));
  }
  closedir(d);
  return found;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  uint64_t mib = 512, percent = 100, idle_ms = 0;
  std::string order = "seq", from = "lazy", image;
  bool wait_resident = false;
  unsigned threads = 1;
  std::vector<std::string> rest;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(usage());
      return argv[++i];
    };
    if (a == "--mib") {
      mib = strtoull(value().c_str(), nullptr, 10);
    } else if (a == "--order") {
      order = value();
    } else if (a == "--percent") {
      percent = strtoull(value().c_str(), nullptr, 10);
    } else if (a == "--from") {
      from = value();
    } else if (a == "--image") {
      image = value();
    } else if (a == "--wait-resident") {
      wait_resident = true;
    } else if (a == "--threads") {
      threads = unsigned(strtoul(value().c_str(), nullptr, 10));
      if (threads < 1 || threads > 2) return usage();
    } else if (a == "--idle-ms") {
      idle_ms = strtoull(value().c_str(), nullptr, 10);
    } else {
      rest.push_back(a);
    }
  }
  const uint64_t t0 = now_ns();
  const size_t bytes = size_t(mib) << 20;
  const size_t pages = bytes / kPage;
  std::vector<uint64_t> buf(kPage / 8);

  if (mode == "fill") {
    char* r = map_region(bytes);
    for (size_t p = 0; p < pages; p++) {
      pattern(p, buf.data());
      memcpy(r + p * kPage, buf.data(), kPage);
    }
    std::printf("filled pages=%zu\n", pages);
    return 0;
  }
  if (mode == "image") {
    if (rest.size() != 1) return usage();
    int fd = open(rest[0].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::perror("restore_scan: image");
      return 1;
    }
    for (size_t p = 0; p < pages; p++) {
      pattern(p, buf.data());
      if (write(fd, buf.data(), kPage) != ssize_t(kPage)) {
        std::perror("restore_scan: write");
        return 1;
      }
    }
    close(fd);
    return 0;
  }
  if (mode == "floor") {
    int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::perror("restore_scan: open image");
      return 1;
    }
    const bool hash = std::find(rest.begin(), rest.end(), "--hash") != rest.end();
    // read(2), the eager way, timed from the mapping on.
    uint64_t a = now_ns();
    char* eager = map_region(bytes);
    for (size_t got = 0; got < bytes;) {
      ssize_t n = pread(fd, eager + got, bytes - got, off_t(got));
      if (n <= 0) return 1;
      got += size_t(n);
    }
    const uint64_t read_ns = now_ns() - a;
    munmap(eager, bytes);
    // UFFDIO_COPY from the mapped image.
    int uffd = int(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    uffdio_api api = {UFFD_API, 0, 0};
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0) {
      std::perror("restore_scan: userfaultfd");
      return 1;
    }
    const char* src = static_cast<const char*>(mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0));
    a = now_ns();
    char* lazy = map_region(bytes);
    uffdio_register reg = {{uint64_t(uintptr_t(lazy)), bytes}, UFFDIO_REGISTER_MODE_MISSING, 0};
    if (src == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
      std::perror("restore_scan: register");
      return 1;
    }
    const size_t run = 256 * kPage;
    std::atomic<uint64_t> sum{0};
    std::atomic<bool> failed{false};
    auto fill = [&](unsigned t) {
      uint64_t s = 0;
      for (size_t off = t * run; off < bytes; off += threads * run) {
        if (hash) {
          for (size_t p = 0; p < run; p += kPage) s += XXH3_64bits(src + off + p, kPage);
        }
        uffdio_copy c = {uint64_t(uintptr_t(lazy + off)), uint64_t(uintptr_t(src + off)), run, 0, 0};
        if (ioctl(uffd, UFFDIO_COPY, &c) != 0) {
          std::perror("restore_scan: UFFDIO_COPY");
          failed = true;
          return;
        }
      }
      sum += s;
    };
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < threads; t++) helpers.emplace_back(fill, t);
    fill(0);
    for (std::thread& h : helpers) h.join();
    if (failed) return 1;
    const uint64_t copy_ns = now_ns() - a;
    size_t bad = 0;
    for (size_t p = 0; p < pages; p++) bad += *reinterpret_cast<const uint64_t*>(lazy + p * kPage) != word(p, 0);
    std::printf("pages=%zu read_ms=%.3f copy_ms=%.3f hash=%d threads=%u bad=%zu%s\n", pages, double(read_ns) / 1e6,
                double(copy_ns) / 1e6, hash ? 1 : 0, threads, bad, sum == 42 ? " " : "");
    close(uffd);
    return bad ? 1 : 0;
  }
  if (mode != "touch" || (order != "seq" && order != "random") || percent < 1 || percent > 100) return usage();

  // Which pages, in which order: a fixed permutation, so a recorded working set names exactly
  // the pages a later run with the same options reads, in the same order.
  std::vector<uint32_t> idx(pages);
  for (size_t p = 0; p < pages; p++) idx[p] = uint32_t(p);
  if (order == "random") {
    std::mt19937_64 rng(20240613);
    std::shuffle(idx.begin(), idx.end(), rng);
  }
  const size_t touched = pages * percent / 100;

  char* r;
  if (from == "mmap") {
    int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::perror("restore_scan: open image");
      return 1;
    }
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
      std::perror("restore_scan: mmap image");
      return 1;
    }
    r = static_cast<char*>(m);
  } else {
    r = map_region(bytes);
    if (from == "read") {
      int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        std::perror("restore_scan: open image");
        return 1;
      }
      size_t got = 0;
      while (got < bytes) {
        ssize_t n = read(fd, r + got, bytes - got);
        if (n <= 0) {
          std::perror("restore_scan: read image");
          return 1;
        }
        got += size_t(n);
      }
      close(fd);
    } else if (from != "lazy" && from != "zero") {
      return usage();
    }
  }
  const bool content = from != "zero";
  size_t bad = 0;
  uint64_t sink = 0;
  for (size_t i = 0; i < touched; i++) {
    const size_t p = idx[i];
    const uint64_t* w = reinterpret_cast<const uint64_t*>(r + p * kPage);
    if (content) {
      bad += w[0] != word(p, 0) || w[kPage / 8 - 1] != word(p, kPage / 8 - 1);
    } else {
      sink += w[0];
    }
  }
  const uint64_t t_read = now_ns();
  std::printf("pages=%zu touched=%zu bad=%zu run_ms=%.3f", pages, touched, bad, double(t_read - t0) / 1e6);
  if (wait_resident) {
    std::vector<unsigned char> vec(pages);
    const uint64_t deadline = t_read + 60ull * 1000000000ull;
    for (;;) {
      if (mincore(r, bytes, vec.data()) != 0) break;
      size_t in = 0;
      for (unsigned char v : vec) in += v & 1;
      if (in == pages || now_ns() > deadline) {
        std::printf(" resident=%zu resident_ms=%.3f", in, double(now_ns() - t0) / 1e6);
        break;
      }
      usleep(200);
    }
  }
  if (idle_ms) {
    const int64_t before = thread_cpu_ns("uffdlazy-");
    const uint64_t s0 = now_ns();
    usleep(useconds_t(idle_ms * 1000));
    const int64_t after = thread_cpu_ns("uffdlazy-");
    const double wall = double(now_ns() - s0);
    if (before >= 0 && after >= 0) {
      std::printf(" monitor_idle_cpu_pct=%.3f", double(after - before) * 100.0 / wall);
    } else {
      std::printf(" monitor_idle_cpu_pct=-1");
    }
  }
  std::printf("%s\n", sink == 42 ? " " : "");
  return bad ? 1 : 0;
}
