// A program with a large reservation of which only a couple of pages are ever touched (a JIT's
// code space, a garbage collector's heap reservation, a sanitizer's shadow), then a wait on stdin
// (where the checkpoint is taken).
//
//   sparse_reservation [--gib N] [--touch N] [--prot none|rw] [--checkpoint] [--wait-signal]
//
// --prot none: the reservation is PROT_NONE and the touched pages are made writable one by one
// (mprotect), as a reserving allocator does; rw (default): one writable mapping, MAP_NORESERVE.
// --touch N pages spread evenly over it are written. Prints to stderr, with CLOCK_MONOTONIC
// nanoseconds: "ready NS" before the wait, "running NS" the moment the read on stdin returned (for
// a resumed process: the first thing it does after the resume), and "done NS checksum X" after
// reading the touched pages back. --wait-signal waits for SIGUSR1 instead of a line on stdin (for
// checkpointers that cannot restore a pipe on stdin: CRIU, in bench/sparse_bench.py). Checkpointed
// and resumed by the e2e tests and bench/sparse_bench.py.
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <pthread.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t gib = 10, touch = 2;
  bool prot_none = false, checkpoint = false, wait_signal = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--gib") && i + 1 < argc) gib = strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--touch") && i + 1 < argc) touch = strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--prot") && i + 1 < argc) prot_none = !strcmp(argv[++i], "none");
    else if (!strcmp(argv[i], "--checkpoint")) checkpoint = true;
    else if (!strcmp(argv[i], "--wait-signal")) wait_signal = true;
  }
  const uint64_t bytes = gib << 30, page = 4096, pages = bytes / page;
  const int prot = prot_none ? PROT_NONE : PROT_READ | PROT_WRITE;
  auto* mem = static_cast<uint8_t*>(mmap(nullptr, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (mem == MAP_FAILED) return 3;
  const uint64_t stride = touch ? pages / touch : 0;
  for (uint64_t t = 0; t < touch; t++) {
    uint8_t* p = mem + t * stride * page;
    if (prot_none && mprotect(p, page, PROT_READ | PROT_WRITE) != 0) return 3;
    for (uint64_t i = 0; i < page; i++) p[i] = uint8_t(i * 7 + t + 1);
  }
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  fprintf(stderr, "ready %llu\n", static_cast<unsigned long long>(now_ns()));
  if (checkpoint) raise(SIGUSR2);
  if (wait_signal) {
    int sig = 0;
    if (sigwait(&usr1, &sig) != 0) return 4;
  } else {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 4;
  }
  const uint64_t running = now_ns();
  uint64_t sum = 0;
  for (uint64_t t = 0; t < touch; t++) {
    const uint8_t* p = mem + t * stride * page;
    for (uint64_t i = 0; i < page; i++) sum = sum * 31 + p[i];
  }
  fprintf(stderr, "running %llu\ndone %llu checksum %llx\n", static_cast<unsigned long long>(running),
          static_cast<unsigned long long>(now_ns()), static_cast<unsigned long long>(sum));
  return 0;
}
