// The program scripts/bench_resume.sh checkpoints and resumes: a warm-up that builds N MiB of
// state (every page computed, as a cache or an interpreter's heap would be), then a wait on stdin
// (where the checkpoint is taken), then a run that touches a given share of the pages at random.
//
//   resume_bench_target [--mb N] [--touch-permille P] [--checkpoint] [--checkpoint-again] [--wait-signal]
//
// --wait-signal waits for SIGUSR1 instead of a line on stdin (for checkpointers that cannot restore
// a pipe on stdin: CRIU, in bench/criu_compare.py).
//
// --checkpoint-again (bench/incremental_bench.py): after the touches, raise the trigger again and
// wait on stdin a second time (a second checkpoint, of the state the touches changed), then end.
//
// Prints to stderr, with CLOCK_MONOTONIC nanoseconds: "warm NS" once the state is built,
// "running NS" the moment the read on stdin returned (for a resumed process: the first thing it
// does after the resume), and "done NS checksum X" at the end.
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
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

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 29;
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mb = 512, permille = 10;
  bool checkpoint = false, again = false, wait_signal = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--touch-permille") && i + 1 < argc) permille = strtoull(argv[++i], nullptr, 10);
    else if (!strcmp(argv[i], "--checkpoint")) checkpoint = true;
    else if (!strcmp(argv[i], "--checkpoint-again")) again = true;
    else if (!strcmp(argv[i], "--wait-signal")) wait_signal = true;
  }
  const uint64_t bytes = mb << 20, pages = bytes / 4096;
  auto* mem = static_cast<uint64_t*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) return 3;
  // Warm-up: every word of every page computed from the previous one.
  uint64_t v = 1;
  for (uint64_t i = 0; i < bytes / 8; i++) mem[i] = v = mix(v + i);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, nullptr);
  fprintf(stderr, "warm %llu\n", static_cast<unsigned long long>(now_ns()));
  if (checkpoint) raise(SIGUSR2);
  char line[64];
  if (wait_signal) {
    int sig = 0;
    if (sigwait(&usr1, &sig) != 0) return 4;
  } else if (!fgets(line, sizeof line, stdin)) {
    return 4;
  }
  const uint64_t running = now_ns();
  uint64_t sum = 0, x = 12345;
  const uint64_t touches = pages * permille / 1000;
  for (uint64_t t = 0; t < touches; t++) {
    x = mix(x + t);
    uint64_t* page = mem + (x % pages) * 512;
    sum += page[x % 512];
    page[(x >> 9) % 512] ^= sum;
  }
  if (again) {
    raise(SIGUSR2);
    if (!fgets(line, sizeof line, stdin)) return 4;
  }
  fprintf(stderr, "running %llu\ndone %llu checksum %016llx\n", static_cast<unsigned long long>(running),
          static_cast<unsigned long long>(now_ns()), static_cast<unsigned long long>(sum));
  return 0;
}
