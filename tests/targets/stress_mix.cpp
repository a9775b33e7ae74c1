// Multi-threaded stress for the shim: every thread keeps its own regions and a shadow of what each
// page must hold, and mixes first touches, writes, madvise(DONTNEED), mremap (move, grow, shrink),
// munmap of tails and MAP_FIXED remaps, all concurrently with the other threads. Every page is
// checked against the shadow after each step. Prints the operation counts (deterministic for a
// given seed) and "mismatches=0"; exits 1 on any mismatch.
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));
std::atomic<long> g_mismatches{0};

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  size_t below(size_t n) { return size_t(next() % n); }
};

struct Block {
  char* base = nullptr;
  size_t pages = 0;
  std::vector<uint64_t> shadow;  // 0: must read zeros; else the tag at both ends of the page
};

void put(Block& b, size_t i, uint64_t tag) {
  std::memcpy(b.base + i * kPage, &tag, 8);
  std::memcpy(b.base + i * kPage + kPage - 8, &tag, 8);
  b.shadow[i] = tag;
}

long verify(const Block& b) {
  long bad = 0;
  for (size_t i = 0; i < b.pages; i++) {
    uint64_t x, y;
    std::memcpy(&x, b.base + i * kPage, 8);
    std::memcpy(&y, b.base + i * kPage + kPage - 8, 8);
    if (x != b.shadow[i] || y != b.shadow[i]) bad++;
  }
  return bad;
}

struct Counts {
  long touch = 0, dontneed = 0, move = 0, grow = 0, shrink = 0, punch = 0, fixed = 0;
};

Block fresh(size_t pages) {
  Block b;
  b.pages = pages;
  b.base = static_cast<char*>(mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (b.base == MAP_FAILED) std::abort();
  b.shadow.assign(pages, 0);
  return b;
}

void step(Block& b, Rng& rng, Counts& c, uint64_t tagbase) {
  switch (rng.below(8)) {
    case 0:
    case 1: {  // touch and write a few pages
      for (int k = 0; k < 8; k++) put(b, rng.below(b.pages), tagbase + rng.next() % 1000000 + 1);
      c.touch++;
      break;
    }
    case 2: {  // drop a range
      size_t s = rng.below(b.pages), n = 1 + rng.below(b.pages - s);
      madvise(b.base + s * kPage, n * kPage, MADV_DONTNEED);
      for (size_t i = s; i < s + n; i++) b.shadow[i] = 0;
      c.dontneed++;
      break;
    }
    case 3: {  // move somewhere else
      void* p = mremap(b.base, b.pages * kPage, b.pages * kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                       mmap(nullptr, b.pages * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      if (p == MAP_FAILED) std::abort();
      b.base = static_cast<char*>(p);
      c.move++;
      break;
    }
    case 4: {  // grow (in place or moving)
      if (b.pages > 256) break;
      size_t more = 1 + rng.below(32);
      void* p = mremap(b.base, b.pages * kPage, (b.pages + more) * kPage, MREMAP_MAYMOVE);
      if (p == MAP_FAILED) std::abort();
      b.base = static_cast<char*>(p);
      b.pages += more;
      b.shadow.resize(b.pages, 0);
      c.grow++;
      break;
    }
    case 5: {  // shrink
      if (b.pages < 24) break;
      size_t keep = b.pages / 2 + rng.below(b.pages / 2);
      void* p = mremap(b.base, b.pages * kPage, keep * kPage, 0);
      if (p == MAP_FAILED) std::abort();
      b.pages = keep;
      b.shadow.resize(keep);
      c.shrink++;
      break;
    }
    case 6: {  // unmap the tail (a hole in the middle could be taken by another thread's mmap)
      if (b.pages < 16) break;
      size_t n = 1 + rng.below(8);
      munmap(b.base + (b.pages - n) * kPage, n * kPage);
      b.pages -= n;
      b.shadow.resize(b.pages);
      c.punch++;
      break;
    }
    case 7: {  // MAP_FIXED straight over the live block (over part of it would split the VMA,
               // and mremap refuses ranges that span several)
      void* p = mmap(b.base, b.pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (p == MAP_FAILED) std::abort();
      for (size_t i = 0; i < b.pages; i++) b.shadow[i] = 0;
      c.fixed++;
      break;
    }
  }
}

struct Job {
  int id;
  int steps;
  Counts counts;
};

void* worker(void* p) {
  Job* job = static_cast<Job*>(p);
  Rng rng{0x1234567ull + uint64_t(job->id) * 7919};
  std::vector<Block> blocks;
  for (int i = 0; i < 4; i++) blocks.push_back(fresh(32 + rng.below(96)));
  for (int s = 0; s < job->steps; s++) {
    Block& b = blocks[rng.below(blocks.size())];
    step(b, rng, job->counts, uint64_t(job->id) << 40);
    long bad = verify(b);
    if (bad) {
      g_mismatches.fetch_add(bad);
      std::fprintf(stderr, "thread %d step %d: %ld pages wrong\n", job->id, s, bad);
    }
  }
  for (auto& b : blocks) {
    g_mismatches.fetch_add(verify(b));
    munmap(b.base, b.pages * kPage);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  int steps = argc > 2 ? std::atoi(argv[2]) : 2000;
  std::vector<Job> jobs(static_cast<size_t>(threads));
  std::vector<pthread_t> ts(static_cast<size_t>(threads));
  for (int i = 0; i < threads; i++) {
    jobs[size_t(i)] = {i, steps, {}};
    pthread_create(&ts[size_t(i)], nullptr, worker, &jobs[size_t(i)]);
  }
  Counts total;
  for (int i = 0; i < threads; i++) {
    pthread_join(ts[size_t(i)], nullptr);
    const Counts& c = jobs[size_t(i)].counts;
    total.touch += c.touch; total.dontneed += c.dontneed; total.move += c.move; total.grow += c.grow;
    total.shrink += c.shrink; total.punch += c.punch; total.fixed += c.fixed;
  }
  std::printf("threads=%d steps=%d touch=%ld dontneed=%ld move=%ld grow=%ld shrink=%ld punch=%ld fixed=%ld\n",
              threads, steps, total.touch, total.dontneed, total.move, total.grow, total.shrink, total.punch,
              total.fixed);
  std::printf("mismatches=%ld\n", g_mismatches.load());
  return g_mismatches.load() ? 1 : 0;
}
