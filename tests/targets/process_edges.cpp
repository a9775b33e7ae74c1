// Process state at the edges of what a checkpoint and a resume bring back.
//
//   process_edges MODE [--trigger]
//
// After setting its state up, the program prints it, sends itself SIGUSR2 (with --trigger: the
// checkpoint's trigger), waits for one byte of stdin (a checkpoint in stop mode ends it there),
// then prints its state again: a resumed run must print what an uninterrupted one prints.
//
// plain: nothing but the checkpoint. rlimit-as: 64 MiB of data, then an address-space limit
// with room for 48 MiB more (a lazy resume cannot map its image); afterwards the data is summed. prot-none: a 32 MiB anonymous mapping (registered by the shim: lazy at resume) full of data,
// one page of it then mprotect'ed PROT_NONE; afterwards the page is made readable and everything
// is summed.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/resource.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

bool g_trigger = false;

void checkpoint_here() {
  fflush(stdout);
  if (g_trigger) kill(getpid(), SIGUSR2);
  char c;
  if (read(0, &c, 1) != 1) printf("no input\n");
}

int prot_none() {
  const size_t bytes = 32u << 20;
  auto* p = static_cast<uint64_t*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 3;
  for (size_t i = 0; i < bytes / 8; i++) p[i] = i * 0x9e3779b97f4a7c15ull;
  char* hidden = reinterpret_cast<char*>(p) + 100 * 4096;
  if (mprotect(hidden, 4096, PROT_NONE)) return 4;
  printf("page hidden\n");
  checkpoint_here();
  if (mprotect(hidden, 4096, PROT_READ)) return 5;
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes / 8; i++) sum += p[i] ^ i;
  printf("sum %llx, hidden page %llx\n", (unsigned long long)sum,
         (unsigned long long)*reinterpret_cast<uint64_t*>(hidden + 8));
  return 0;
}

// The address space in use (VmSize), in bytes.
uint64_t address_space() {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  uint64_t kb = 0;
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "VmSize:", 7)) kb = strtoull(line + 7, nullptr, 10);
  }
  if (f) fclose(f);
  return kb * 1024;
}

int rlimit_as() {
  const size_t bytes = 64u << 20;
  auto* p = static_cast<uint64_t*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 3;
  for (size_t i = 0; i < bytes / 8; i++) p[i] = i * 0x9e3779b97f4a7c15ull;
  // Room for what it does next, not for a second copy of its memory.
  rlimit lim = {address_space() + (48u << 20), RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &lim)) return 4;
  printf("limited\n");
  checkpoint_here();
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes / 8; i++) sum += p[i] ^ i;
  printf("sum %llx\n", (unsigned long long)sum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  for (int i = 2; i < argc; i++) g_trigger |= !strcmp(argv[i], "--trigger");
  if (!strcmp(mode, "prot-none")) return prot_none();
  if (!strcmp(mode, "rlimit-as")) return rlimit_as();
  if (!strcmp(mode, "plain")) {
    printf("before\n");
    checkpoint_here();
    printf("after\n");
    return 0;
  }
  fprintf(stderr, "process_edges: unknown mode %s\n", mode);
  return 2;
}
