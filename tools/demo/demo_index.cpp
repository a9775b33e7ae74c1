// uffdlazy-demo-index: the built-in demo, a program that keeps restorable state in memory.
//
// It maps one large anonymous region and, on a cold start, builds a hash index in it (hundreds of
// MiB). If the region already holds a valid index when the program starts -- because uffdlazy
// restored it from a snapshot -- it checks the header's checksum and uses the memory as is. Then it
// answers a batch of lookups, each verifying the entry it reads, and reports how long it took to
// become ready. Only the pages the lookups touch are ever faulted in on a restored start.
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr uint64_t kMagic = 0x5844494f4d454455ull;  // "UDEMOIDX"
constexpr uint32_t kVersion = 1;

struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t reserved;
  uint64_t entries;   // slots in the table
  uint64_t seed;
  uint64_t build_ns;  // how long the cold build took
  uint64_t checksum;  // over the fields above
};

struct Entry {
  uint64_t key;
  uint64_t value;
};

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

uint64_t header_checksum(const Header& h) {
  return mix(h.magic ^ mix(h.version ^ mix(h.entries ^ mix(h.seed ^ mix(h.build_ns)))));
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t key_of(uint64_t seed, uint64_t i) { return mix(seed + i) | 1; }
uint64_t value_of(uint64_t key) { return mix(key ^ 0x9e3779b97f4a7c15ull); }

void usage() {
  std::fprintf(stderr, "usage: uffdlazy-demo-index [--mib N] [--queries N] [--seed N]\n");
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mib = 256, queries = 2000, seed = 42;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if ((a == "--mib" || a == "--queries" || a == "--seed") && i + 1 < argc) {
      char* end = nullptr;
      uint64_t v = std::strtoull(argv[++i], &end, 10);
      if (!end || *end || v == 0) {
        std::fprintf(stderr, "uffdlazy-demo-index: %s needs a positive number\n", a.c_str());
        return 2;
      }
      (a == "--mib" ? mib : a == "--queries" ? queries : seed) = v;
    } else {
      usage();
      return 2;
    }
  }
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t bytes = size_t(mib) << 20;
  uint64_t t0 = now_ns();
  char* mem = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) {
    std::perror("uffdlazy-demo-index: mmap");
    return 1;
  }
  auto* header = reinterpret_cast<Header*>(mem);
  auto* table = reinterpret_cast<Entry*>(mem + page);
  const uint64_t slots = (bytes - page) / sizeof(Entry);
  const uint64_t live = slots / 2;  // half full: short probe sequences

  bool restored = header->magic == kMagic && header->version == kVersion && header->entries == slots &&
                  header->seed == seed && header->checksum == header_checksum(*header);
  if (!restored) {
    for (uint64_t i = 0; i < live; i++) {
      uint64_t k = key_of(seed, i);
      uint64_t s = k % slots;
      while (table[s].key) s = (s + 1) % slots;
      table[s] = {k, value_of(k)};
    }
    Header h = {kMagic, kVersion, 0, slots, seed, 0, 0};
    h.build_ns = now_ns() - t0;
    h.checksum = header_checksum(h);
    *header = h;
  }
  uint64_t ready_ns = now_ns() - t0;

  // Queries: every answer is verified against the value the key must map to.
  uint64_t digest = 0, bad = 0;
  uint64_t q0 = now_ns();
  for (uint64_t q = 0; q < queries; q++) {
    uint64_t k = key_of(seed, mix(q * 7919 + 1) % live);
    uint64_t s = k % slots;
    while (table[s].key && table[s].key != k) s = (s + 1) % slots;
    if (table[s].key != k || table[s].value != value_of(k)) bad++;
    digest = mix(digest ^ table[s].value);
  }
  uint64_t query_ns = now_ns() - q0;

  std::printf("demo-index: %s start, ready in %.1f ms (%llu MiB index, %llu entries)\n",
              restored ? "restored" : "cold", double(ready_ns) / 1e6, (unsigned long long)mib,
              (unsigned long long)live);
  std::printf("demo-index: %llu lookups in %.1f ms, %llu wrong, answer digest %016llx\n",
              (unsigned long long)queries, double(query_ns) / 1e6, (unsigned long long)bad,
              (unsigned long long)digest);
  return bad ? 1 : 0;
}
