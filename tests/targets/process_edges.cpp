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
// is summed. settings: transparent huge pages disabled (PR_SET_THP_DISABLE), a membarrier
// private-expedited registration, oom_score_adj 321, supplementary groups 1234 and 5678 (run as
// root) and a read lease on a file of its own; each is printed. rseq: glibc told to register no
// restartable-sequence area (run it with GLIBC_TUNABLES=glibc.pthread.rseq=0), the program
// registers its own through syscall(2); whether the kernel still has it is printed. rseq-raw: the
// same by the syscall instruction itself (a checkpoint cannot know where it lies, and refuses).
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <linux/membarrier.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

void print_settings(int lease_fd) {
  printf("thp disabled %d\n", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
  const long mb = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  printf("membarrier private expedited %s\n", mb == 0 ? "ok" : strerror(errno));
  char adj[32] = {};
  const int fd = open("/proc/self/oom_score_adj", O_RDONLY);
  if (fd < 0 || read(fd, adj, sizeof adj - 1) <= 0) return;
  close(fd);
  printf("oom_score_adj %s", adj);
  gid_t groups[16];
  const int n = getgroups(16, groups);
  printf("groups");
  for (int i = 0; i < n; i++) printf(" %u", unsigned(groups[i]));
  const int lease = fcntl(lease_fd, F_GETLEASE);
  printf("\nlease %s\n", lease == F_RDLCK ? "read" : lease == F_UNLCK ? "none" : "other");
}

int settings() {
  char path[] = "/tmp/uffdlazy-lease-XXXXXX";
  const int made = mkstemp(path);
  if (made < 0) return 3;
  close(made);
  const int lease_fd = open(path, O_RDONLY);
  const gid_t groups[] = {1234, 5678};
  const int adj = open("/proc/self/oom_score_adj", O_WRONLY);
  if (lease_fd < 0 || adj < 0 || write(adj, "321", 3) != 3 || fcntl(lease_fd, F_SETLEASE, F_RDLCK) ||
      prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) || syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) ||
      setgroups(2, groups)) {
    perror("process_edges: settings");
    unlink(path);
    return 4;
  }
  close(adj);
  print_settings(lease_fd);
  checkpoint_here();
  print_settings(lease_fd);
  unlink(path);
  return 0;
}

constexpr uint32_t kRseqSignature = 0x53053053;
struct alignas(32) RseqArea {
  uint32_t cpu_id_start, cpu_id;
  uint64_t critical_section;
  uint32_t flags, node_id, mm_cid, pad;
};

int rseq() {
  static RseqArea area;
  area.cpu_id = uint32_t(-1);
  if (syscall(SYS_rseq, &area, 32, 0, kRseqSignature)) {
    perror("process_edges: rseq");
    return 4;
  }
  printf("rseq registered\n");
  checkpoint_here();
  // Registering the same area again: EBUSY while the kernel has it.
  const long again = syscall(SYS_rseq, &area, 32, 0, kRseqSignature);
  printf("rseq again: %s\n", again == 0 ? "accepted (it was gone)" : strerror(errno));
  return 0;
}

// The same area registered by the syscall instruction itself, out of the shim's sight.
int rseq_raw() {
  static RseqArea area;
  area.cpu_id = uint32_t(-1);
  long r;
  register long signature __asm__("r10") = kRseqSignature;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "a"(long(SYS_rseq)), "D"(&area), "S"(32L), "d"(0L), "r"(signature)
                   : "rcx", "r11", "memory");
  if (r) {
    fprintf(stderr, "process_edges: rseq: %s\n", strerror(int(-r)));
    return 4;
  }
  printf("rseq registered\n");
  checkpoint_here();
  printf("resumed\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  for (int i = 2; i < argc; i++) g_trigger |= !strcmp(argv[i], "--trigger");
  if (!strcmp(mode, "prot-none")) return prot_none();
  if (!strcmp(mode, "rlimit-as")) return rlimit_as();
  if (!strcmp(mode, "settings")) return settings();
  if (!strcmp(mode, "rseq")) return rseq();
  if (!strcmp(mode, "rseq-raw")) return rseq_raw();
  if (!strcmp(mode, "plain")) {
    printf("before\n");
    checkpoint_here();
    printf("after\n");
    return 0;
  }
  fprintf(stderr, "process_edges: unknown mode %s\n", mode);
  return 2;
}
