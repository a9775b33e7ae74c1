// A deterministic program for checkpoint/resume tests: whatever point it is checkpointed at and
// resumed from, it must print exactly the same lines and leave exactly the same files as an
// uninterrupted run.
//
//   resume_target [--mb N] [--steps N] [--threads N] [--log FILE] [--data FILE]
//                 [--pause-at K]... [--signal-at K]... [--slow-ms N] [--nap-ms N] [--list-fds]
//                 [--exit N] [--fork] [--mapped FILE] [--pending] [--drop-at K] [--resident-wait-ms N]
//                 [--sum-all] [--objects LIST] [--churn-at K] [--zombies N]
//                 [--workers N] [--worker-maps FILE]
//
// Memory: a large mmap'd array (registered by the shim: lazily served after a resume), malloc'd
// buffers (the brk heap and glibc's own mappings), a deep recursion (the stack), thread stacks and
// TLS. Each step updates the array, mixes in heap and TLS state, prints a line, appends to --log
// (O_APPEND) and writes to --data (a regular file at its offset). Checks that a resumed process
// needs: raise() (glibc's cached tid), clock_gettime (the vDSO), sbrk growth (brk), rseq, a
// handler installed before the checkpoint, the signal mask, the alternate stack, cwd and umask.
//
// --signal-at K: raise SIGUSR2 (the checkpoint trigger) at step K. --pause-at K: at step K,
// after the signal, read one byte from stdin (a blocked, restartable system call to checkpoint
// in). Both may be repeated. --slow-ms N: sleep N ms per step (a checkpoint lands somewhere in
// between, and the program retries its own sleep). --nap-ms N: sleep N ms per step with usleep and
// nanosleep, and print what they returned (a checkpoint must not cut them short). --list-fds: print the descriptors below 900 it did not inherit, at the end (the shim
// keeps its own above). --fork: at the end, a forked child sums the whole array (a child of a
// lazily resumed process must see every page the parent would). --mapped FILE: FILE (1 MiB, made
// if missing) mapped twice, shared (each step writes a page of it) and private (each step changes
// a page of its own copy); both are summed at the end. --pending: at each pause, a SIGUSR1 is left
// pending (blocked) across the read, and handled after it.
//
// The background fill after a resume (all three act at step K, after its pause, in this order):
// --drop-at K drops the last 16 pages of every 4 MiB of the array with MADV_DONTNEED (they must
// read zeros from then on, whatever the shim installs meanwhile); --resident-wait-ms N waits up to
// N ms for every other page of the array to be resident (mincore, which touches nothing) and says
// on stderr how many were, and after how long; then --drop-at prints how many dropped pages read
// zeros. --sum-all: at the end, print a sum over every word of the array.
//
// --objects LIST: also hold the kernel objects of LIST (comma-separated; tests/targets/lib/
// held_objects.h), made next to the --data file, each used at every step (after the step's line)
// so that a checkpoint finds data in flight in them, and finished after the last step.
//
// --zombies N: before the first step, fork N children that each sum memory of their own and exit
// with a status made from it (the third is killed by SIGTERM instead), and wait until each has
// ended without reaping it; at step K (after its pause) reap child K with waitpid(its pid), the
// last one at the end with wait() after kill(its pid, 0), then wait() once more (ECHILD). Each
// reaped child prints its status and whether wait returned the pid fork did.
//
// --workers N: before the first step, fork N children that each fill 4 MiB of their own, then
// wait for SIGUSR1 (sigwaitinfo) and exit with a status made from that memory and the signal's
// sender. At the end the parent sends each SIGUSR1 (kill with the pid fork returned) and reaps it
// (waitpid), printing its status. --worker-maps FILE: each worker also maps FILE (the parent does
// not), and adds its first byte to its status.
//
// --churn-at K: at step K (after its pause, before --drop-at) the program changes its memory in
// every way a later image must get right: two chunks of the array swap places (mremap through a
// spare range), and an 8 MiB region of its own (filled at the start) has pages dropped
// (MADV_DONTNEED: zeros), pages written again, a piece unmapped, a piece moved elsewhere, and a
// new region is made. With --sum-all, all of it is summed at the end ("churn ...").
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "tests/targets/lib/held_objects.h"

namespace {

uint64_t* g_array = nullptr;
size_t g_words = 0;
int g_threads = 1;
pthread_barrier_t g_barrier;
uint64_t g_partial[64];
thread_local uint64_t t_mix = 0x9e3779b97f4a7c15ull;
volatile sig_atomic_t g_usr1 = 0;
int g_step = 0;

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

void on_usr1(int) { g_usr1 = g_usr1 + 1; }

uint64_t recurse(int depth, uint64_t v) {
  volatile char pad[512];
  pad[depth % 512] = char(v);
  if (depth == 0) return v + uint64_t(pad[0]);
  return recurse(depth - 1, mix(v + uint64_t(depth))) ^ uint64_t(pad[depth % 512]);
}

void* worker(void* arg) {
  const long id = long(arg);
  t_mix = 0x1234 + uint64_t(id);
  for (;;) {
    pthread_barrier_wait(&g_barrier);
    if (g_step < 0) return nullptr;
    const size_t chunk = g_words / size_t(g_threads);
    const size_t from = chunk * size_t(id), to = id == g_threads - 1 ? g_words : from + chunk;
    uint64_t sum = 0;
    // Touch a stride of the array (1/64th of the pages per step, varying with the step).
    for (size_t i = from + size_t(g_step) * 512; i < to; i += 64 * 512) {
      g_array[i] = mix(g_array[i] + uint64_t(g_step) + t_mix);
      sum += g_array[i];
    }
    t_mix = mix(t_mix + sum);
    g_partial[id] = sum ^ t_mix;
    pthread_barrier_wait(&g_barrier);
  }
}

int rseq_registered() {
#ifdef SYS_rseq
  if (__rseq_size == 0) return -1;
  char* tp = static_cast<char*>(__builtin_thread_pointer());
  long r = syscall(SYS_rseq, tp + __rseq_offset, 32, 0, 0x53053053);
  return r == -1 && errno == EBUSY ? 1 : 0;
#else
  return -1;
#endif
}

}  // namespace

// Descriptors below 900 open now.
void open_fds(bool* out) {
  DIR* d = opendir("/proc/self/fd");
  const int own = dirfd(d);
  while (dirent* e = readdir(d)) {
    const int fd = atoi(e->d_name);
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd != own && fd < 900) out[fd] = true;
  }
  closedir(d);
}

uint64_t elapsed_ms(const timespec& from) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec - from.tv_sec) * 1000 + uint64_t(now.tv_nsec / 1000000) - uint64_t(from.tv_nsec / 1000000);
}

constexpr size_t kPage = 4096, kDropEvery = 1024, kDropPages = 16;  // pages

// --churn-at: the 8 MiB region (pages 0-511 and 1024-1535 stay, 512-1023 move to g_moved,
// 1536-2047 are unmapped) and the region made at the churn.
constexpr size_t kChurnPages = 2048, kFreshPages = 1024;
uint64_t* g_churn = nullptr;
uint64_t* g_moved = nullptr;
uint64_t* g_fresh = nullptr;

uint64_t* page_at(uint64_t* base, size_t page) { return base + page * (kPage / sizeof(uint64_t)); }

void fill_pages(uint64_t* base, size_t first, size_t count, uint64_t seed) {
  for (size_t p = first; p < first + count; p++) {
    for (size_t w = 0; w < kPage / sizeof(uint64_t); w += 64) page_at(base, p)[w] = mix(seed + p * 4099 + w);
  }
}

void make_churn_region() {
  void* m = mmap(nullptr, kChurnPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) exit(3);
  g_churn = static_cast<uint64_t*>(m);
  fill_pages(g_churn, 0, kChurnPages, 1);
}

// Moves `pages` pages from `from` to `to` (both inside mappings the program owns).
void move_pages(uint64_t* from, uint64_t* to, size_t pages) {
  if (mremap(from, pages * kPage, pages * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to) exit(7);
}

void churn() {
  // Swap array pages [256, 384) and [640, 768) through a spare range.
  const size_t n = 128;
  void* spare = mmap(nullptr, n * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (spare == MAP_FAILED || g_words * sizeof(uint64_t) < 768 * kPage) exit(7);
  uint64_t* tmp = static_cast<uint64_t*>(spare);
  move_pages(page_at(g_array, 256), tmp, n);
  move_pages(page_at(g_array, 640), page_at(g_array, 256), n);
  move_pages(tmp, page_at(g_array, 640), n);
  madvise(page_at(g_churn, 100), 50 * kPage, MADV_DONTNEED);
  fill_pages(g_churn, 1024, 64, 2);
  munmap(page_at(g_churn, 1536), 512 * kPage);
  void* dst = mmap(nullptr, 512 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (dst == MAP_FAILED) exit(7);
  g_moved = static_cast<uint64_t*>(dst);
  move_pages(page_at(g_churn, 512), g_moved, 512);
  fill_pages(g_moved, 10, 5, 3);
  void* fresh = mmap(nullptr, kFreshPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) exit(7);
  g_fresh = static_cast<uint64_t*>(fresh);
  fill_pages(g_fresh, 0, kFreshPages, 4);
}

uint64_t sum_pages(const uint64_t* base, size_t pages, uint64_t sum) {
  for (size_t i = 0; i < pages * kPage / sizeof(uint64_t); i++) sum = mix(sum + base[i] + i);
  return sum;
}

bool dropped_page(size_t page) { return page % kDropEvery >= kDropEvery - kDropPages; }

// Resident pages of the array, leaving out the dropped ones when `skip_dropped`.
size_t resident_pages(bool skip_dropped, size_t* of) {
  const size_t pages = g_words * sizeof(uint64_t) / kPage;
  static unsigned char* vec = static_cast<unsigned char*>(malloc(pages));
  mincore(g_array, pages * kPage, vec);
  size_t n = 0, total = 0;
  for (size_t p = 0; p < pages; p++) {
    if (skip_dropped && dropped_page(p)) continue;
    total++;
    n += vec[p] & 1;
  }
  *of = total;
  return n;
}

void drop_and_wait(bool drop, int wait_ms) {
  const size_t pages = g_words * sizeof(uint64_t) / kPage;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  size_t ahead = 0, dropped = 0;
  if (drop) {
    // How many of the pages about to be dropped are not in place yet (the fill is still to come).
    static unsigned char* vec = static_cast<unsigned char*>(malloc(pages));
    mincore(g_array, pages * kPage, vec);
    for (size_t p = kDropEvery - kDropPages; p < pages; p += kDropEvery) {
      for (size_t i = 0; i < kDropPages && p + i < pages; i++) ahead += !(vec[p + i] & 1);
      madvise(reinterpret_cast<char*>(g_array) + p * kPage, kDropPages * kPage, MADV_DONTNEED);
      dropped += kDropPages;
    }
    fprintf(stderr, "resume_target: dropped %zu pages, %zu not yet resident\n", dropped, ahead);
  }
  if (wait_ms) {
    size_t of = 0, n = 0;
    for (;;) {
      n = resident_pages(drop, &of);
      if (n == of || elapsed_ms(start) >= uint64_t(wait_ms)) break;
      usleep(1000);
    }
    fprintf(stderr, "resume_target: resident %zu of %zu pages after %llu ms\n", n, of,
            static_cast<unsigned long long>(elapsed_ms(start)));
  }
  if (drop) {
    size_t zero = 0;
    for (size_t p = kDropEvery - kDropPages; p < pages; p += kDropEvery) {
      for (size_t i = 0; i < kDropPages && p + i < pages; i++) {
        const uint64_t* w = g_array + (p + i) * (kPage / sizeof(uint64_t));
        bool all = true;
        for (size_t k = 0; k < kPage / sizeof(uint64_t); k++) all &= w[k] == 0;
        zero += all;
      }
    }
    printf("dropped %zu pages, %zu read zeros\n", dropped, zero);
  }
}

int main(int argc, char** argv) {
  static bool inherited[900];
  open_fds(inherited);
  size_t mb = 64;
  int steps = 40, slow_ms = 0, nap_ms = 0;
  bool pause_at[1024] = {}, signal_at[1024] = {}, list_fds = false;
  int exit_code = 0;
  bool fork_at_end = false;
  const char* mapped_path = nullptr;
  bool pending = false;
  const char* log_path = nullptr;
  const char* data_path = nullptr;
  int drop_at = -1, resident_wait_ms = 0, churn_at = -1;
  bool sum_all = false;
  const char* objects_list = nullptr;
  int zombies = 0, workers = 0;
  const char* worker_maps = nullptr;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "0";
    if (!strcmp(a, "--mb")) mb = size_t(atol(v)), i++;
    else if (!strcmp(a, "--steps")) steps = atoi(v), i++;
    else if (!strcmp(a, "--threads")) g_threads = atoi(v), i++;
    else if (!strcmp(a, "--log")) log_path = v, i++;
    else if (!strcmp(a, "--data")) data_path = v, i++;
    else if (!strcmp(a, "--pause-at")) pause_at[atoi(v) & 1023] = true, i++;
    else if (!strcmp(a, "--signal-at")) signal_at[atoi(v) & 1023] = true, i++;
    else if (!strcmp(a, "--list-fds")) list_fds = true;
    else if (!strcmp(a, "--exit")) exit_code = atoi(v), i++;
    else if (!strcmp(a, "--fork")) fork_at_end = true;
    else if (!strcmp(a, "--mapped")) mapped_path = v, i++;
    else if (!strcmp(a, "--pending")) pending = true;
    else if (!strcmp(a, "--slow-ms")) slow_ms = atoi(v), i++;
    else if (!strcmp(a, "--nap-ms")) nap_ms = atoi(v), i++;
    else if (!strcmp(a, "--drop-at")) drop_at = atoi(v), i++;
    else if (!strcmp(a, "--resident-wait-ms")) resident_wait_ms = atoi(v), i++;
    else if (!strcmp(a, "--sum-all")) sum_all = true;
    else if (!strcmp(a, "--objects")) objects_list = v, i++;
    else if (!strcmp(a, "--churn-at")) churn_at = atoi(v), i++;
    else if (!strcmp(a, "--zombies")) zombies = atoi(v), i++;
    else if (!strcmp(a, "--workers")) workers = atoi(v), i++;
    else if (!strcmp(a, "--worker-maps")) worker_maps = v, i++;
    else {
      fprintf(stderr, "resume_target: unknown option %s\n", a);
      return 2;
    }
  }
  if (g_threads < 1 || g_threads > 64) return 2;
  // Buffered output crosses the checkpoint: all of it (the tests compare a resumed copy's whole
  // output). A buffer of our own, since glibc ignores the size when given none and takes the
  // pipe's st_blksize (4096): output then left at each 4 KiB, and how much had left by the
  // checkpoint depended on the host's speed.
  static char stdout_buffer[1 << 16];
  setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
  umask(027);
  char start_cwd[4096];
  if (!getcwd(start_cwd, sizeof start_cwd)) return 5;
  // Process state that must come back: a soft limit and an interval timer far in the future.
  rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = 500;
  setrlimit(RLIMIT_NOFILE, &nofile);
  signal(SIGALRM, SIG_IGN);
  itimerval itv = {{0, 0}, {100000, 0}};
  setitimer(ITIMER_REAL, &itv, nullptr);
  g_words = mb * (1u << 20) / sizeof(uint64_t);
  void* m = mmap(nullptr, g_words * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 3;
  g_array = static_cast<uint64_t*>(m);
  for (size_t i = 0; i < g_words; i += 512) g_array[i] = mix(i);  // every page written once
  if (churn_at >= 0) make_churn_region();
  // Heap: small blocks (brk) and a large one (glibc's own mmap).
  const size_t nsmall = 2000;
  uint64_t** small = static_cast<uint64_t**>(malloc(nsmall * sizeof(uint64_t*)));
  for (size_t i = 0; i < nsmall; i++) {
    small[i] = static_cast<uint64_t*>(malloc(64));
    small[i][0] = mix(i + 7);
  }
  uint64_t* large = static_cast<uint64_t*>(malloc(4 << 20));
  for (size_t i = 0; i < (4u << 20) / 8; i += 256) large[i] = mix(i + 11);
  // Another of glibc's own mappings, grown (mremap) after the checkpoint.
  uint64_t* grown = static_cast<uint64_t*>(malloc(6 << 20));
  for (size_t i = 0; i < (6u << 20) / 8; i += 64) grown[i] = mix(i + 13);
  struct sigaction sa = {};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, nullptr);
  static char altstack[64 * 1024];
  stack_t ss = {};
  ss.ss_sp = altstack;
  ss.ss_size = sizeof altstack;
  sigaltstack(&ss, nullptr);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGWINCH);
  sigprocmask(SIG_BLOCK, &blocked, nullptr);

  int log_fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
  int data_fd = data_path ? open(data_path, O_RDWR | O_CREAT | O_TRUNC, 0644) : -1;

  uint64_t* shared_map = nullptr;
  uint64_t* private_map = nullptr;
  if (mapped_path) {
    int fd = open(mapped_path, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, 1 << 20)) return 6;
    shared_map = static_cast<uint64_t*>(mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    private_map = static_cast<uint64_t*>(mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
    close(fd);
    if (shared_map == MAP_FAILED || private_map == MAP_FAILED) return 6;
  }
  std::string objects_dir = data_path ? data_path : ".";
  objects_dir = objects_dir.substr(0, objects_dir.rfind('/') == std::string::npos ? 0 : objects_dir.rfind('/'));
  held::Objects objects(objects_list ? objects_list : "", objects_dir.empty() ? "." : objects_dir);
  objects.setup();
  if (zombies < 0 || zombies > 32) return 2;
  pid_t kids[32];
  fflush(stdout);
  for (int k = 0; k < zombies; k++) {
    kids[k] = fork();
    if (kids[k] < 0) return 7;
    if (kids[k] == 0) {
      // Memory of its own, written after the fork.
      const size_t n = (size_t(k) + 1) << 17;
      uint64_t* own = static_cast<uint64_t*>(malloc(n * sizeof(uint64_t)));
      uint64_t sum = 0;
      for (size_t i = 0; i < n; i++) own[i] = mix(i + size_t(k) * 31);
      for (size_t i = 0; i < n; i += 7) sum = mix(sum + own[i]);
      if (k == 2) raise(SIGTERM);
      _exit(int(sum % 200) + k);
    }
  }
  for (int k = 0; k < zombies; k++) {
    siginfo_t si;
    if (waitid(P_PID, id_t(kids[k]), &si, WEXITED | WNOWAIT) != 0) return 7;
  }
  auto say_reaped = [&](int k, pid_t got, int status) {
    if (WIFEXITED(status)) printf("child %d exited %d same-pid %d\n", k, WEXITSTATUS(status), int(got == kids[k]));
    else printf("child %d killed %d same-pid %d\n", k, WIFSIGNALED(status) ? WTERMSIG(status) : -1, int(got == kids[k]));
  };
  if (workers < 0 || workers > 16) return 2;
  pid_t worker_pids[16];
  {
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    fflush(stdout);
    // With --worker-maps the parent waits until every worker has mapped the file (a pipe, gone
    // again before the first step: a checkpoint finds the file mapped in each worker).
    int mapped_pipe[2] = {-1, -1};
    if (worker_maps && pipe(mapped_pipe) != 0) return 7;
    for (int k = 0; k < workers; k++) {
      worker_pids[k] = fork();
      if (worker_pids[k] < 0) return 7;
      if (worker_pids[k] == 0) {
        const size_t n = (4u << 20) / sizeof(uint64_t);
        void* own = mmap(nullptr, n * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (own == MAP_FAILED) _exit(120);
        uint64_t* w = static_cast<uint64_t*>(own);
        for (size_t i = 0; i < n; i += 64) w[i] = mix(i + size_t(k) * 977);
        const char* mapped = nullptr;
        if (worker_maps) {
          const int fd = open(worker_maps, O_RDONLY);
          void* m = fd >= 0 ? mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
          if (m == MAP_FAILED) _exit(121);
          close(fd);
          mapped = static_cast<const char*>(m);
          close(mapped_pipe[0]);
          if (write(mapped_pipe[1], "m", 1) != 1) _exit(122);
          close(mapped_pipe[1]);
        }
        siginfo_t si;
        while (sigwaitinfo(&usr1, &si) < 0) {
        }
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i += 64) sum = mix(sum + w[i]);
        _exit(int(sum % 100) + (si.si_pid == getppid() ? 100 : 0) + k + (mapped ? mapped[0] % 8 : 0));
      }
    }
    if (worker_maps) {
      close(mapped_pipe[1]);
      char c;
      for (int k = 0; k < workers; k++) {
        if (read(mapped_pipe[0], &c, 1) != 1) return 7;
      }
      close(mapped_pipe[0]);
    }
    sigprocmask(SIG_SETMASK, &old, nullptr);
  }
  pthread_barrier_init(&g_barrier, nullptr, unsigned(g_threads) + 1);
  pthread_t tids[64];
  for (long t = 0; t < g_threads; t++) pthread_create(&tids[t], nullptr, worker, reinterpret_cast<void*>(t));

  uint64_t total = 0;
  for (int s = 0; s < steps; s++) {
    g_step = s;
    pthread_barrier_wait(&g_barrier);
    pthread_barrier_wait(&g_barrier);
    uint64_t sum = 0;
    for (int t = 0; t < g_threads; t++) sum ^= g_partial[t];
    sum ^= small[size_t(s) % nsmall][0] ^ large[(size_t(s) * 4099) % ((4u << 20) / 8)];
    sum ^= recurse(200, sum);
    total = mix(total + sum);
    if (shared_map) {
      shared_map[(size_t(s) % 256) * 512] = total;
      private_map[(size_t(s * 7) % 256) * 512 + 1] = total ^ 1;
    }
    printf("step %d sum %016llx\n", s, static_cast<unsigned long long>(sum));
    if (log_fd >= 0) dprintf(log_fd, "log %d %016llx\n", s, static_cast<unsigned long long>(total));
    if (data_fd >= 0 && write(data_fd, &total, sizeof total) != sizeof total) return 4;
    objects.step(s);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    if (pending && pause_at[s & 1023]) {
      sigprocmask(SIG_BLOCK, &usr1, nullptr);
      raise(SIGUSR1);
    }
    if (signal_at[s & 1023]) raise(SIGUSR2);
    if (pause_at[s & 1023]) {
      char c;
      ssize_t r;
      do {
        r = read(0, &c, 1);
      } while (r < 0 && errno == EINTR);
      printf("read %zd\n", r);
      if (pending) {
        sigprocmask(SIG_UNBLOCK, &usr1, nullptr);
        printf("usr1 after the read %d\n", int(g_usr1));
      }
    }
    if (s < zombies - 1) {
      int status = 0;
      const pid_t got = waitpid(kids[s], &status, 0);
      say_reaped(s, got, status);
    }
    if (s == churn_at) churn();
    if (s == drop_at) drop_and_wait(true, resident_wait_ms);
    else if (resident_wait_ms && pause_at[s & 1023]) drop_and_wait(false, resident_wait_ms);
    if (nap_ms) {
      const int a = usleep(useconds_t(nap_ms) * 500);
      timespec half = {0, long(nap_ms) * 500000L};
      const int b = nanosleep(&half, nullptr);
      printf("nap %d %d\n", a, b);
    }
    if (slow_ms) {
      timespec ts = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
      while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
      }
    }
  }
  g_step = -1;
  pthread_barrier_wait(&g_barrier);
  for (int t = 0; t < g_threads; t++) pthread_join(tids[t], nullptr);
  objects.finish();
  for (int k = 0; k < workers; k++) {
    const int sent = kill(worker_pids[k], SIGUSR1);
    int status = 0;
    const pid_t got = waitpid(worker_pids[k], &status, 0);
    printf("worker %d kill %d exited %d same-pid %d\n", k, sent, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           int(got == worker_pids[k]));
  }
  if (zombies > 0) {
    for (int k = steps; k < zombies - 1; k++) {
      int status = 0;
      const pid_t got = waitpid(kids[k], &status, 0);
      say_reaped(k, got, status);
    }
    const int alive = kill(kids[zombies - 1], 0);
    int status = 0;
    const pid_t got = wait(&status);
    printf("kill %d; ", alive);
    say_reaped(zombies - 1, got, status);
    errno = 0;
    const pid_t none = wait(&status);
    printf("wait again %d %s\n", int(none), none < 0 && errno == ECHILD ? "ECHILD" : "?");
  }

  if (sum_all) {
    uint64_t sum = 0;
    for (size_t i = 0; i < g_words; i++) sum = mix(sum + g_array[i] + i);
    printf("array %016llx\n", static_cast<unsigned long long>(sum));
    if (g_churn) {
      uint64_t c = sum_pages(g_churn, 512, 0);
      c = sum_pages(page_at(g_churn, 1024), 512, c);
      if (g_moved) c = sum_pages(g_moved, 512, c);
      if (g_fresh) c = sum_pages(g_fresh, kFreshPages, c);
      printf("churn %016llx\n", static_cast<unsigned long long>(c));
    }
  }
  if (shared_map) {
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i < (1u << 20) / 8; i++) {
      a = mix(a + shared_map[i]);
      b = mix(b + private_map[i]);
    }
    msync(shared_map, 1 << 20, MS_SYNC);
    printf("mapped %016llx %016llx\n", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  }
  if (fork_at_end) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
      uint64_t sum = 0;
      for (size_t i = 0; i < g_words; i += 512) sum = mix(sum + g_array[i]);
      printf("child %016llx\n", static_cast<unsigned long long>(sum));
      fflush(stdout);
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("child status %d\n", status);
  }
  // glibc's memory, served lazily after a resume, moved, freed and trimmed by glibc itself.
  grown = static_cast<uint64_t*>(realloc(grown, 24 << 20));
  uint64_t heap_sum = 0;
  for (size_t i = 0; i < (6u << 20) / 8; i += 64) heap_sum = mix(heap_sum + grown[i]);
  for (size_t i = 0; i < nsmall; i += 3) {
    heap_sum = mix(heap_sum + small[i][0]);
    free(small[i]);
  }
  free(large);
  malloc_trim(0);
  for (size_t i = 1; i < nsmall; i += 3) heap_sum = mix(heap_sum + small[i][0]);
  printf("heap %016llx\n", static_cast<unsigned long long>(heap_sum));
  // What a resumed process must still do right.
  raise(SIGUSR1);
  timespec now;
  const bool clock_ok = clock_gettime(CLOCK_MONOTONIC, &now) == 0 && now.tv_sec > 0;
  void* before = sbrk(0);
  const bool brk_ok = sbrk(1 << 20) == before && sbrk(0) == static_cast<char*>(before) + (1 << 20);
  sigset_t mask;
  sigprocmask(SIG_BLOCK, nullptr, &mask);
  stack_t cur = {};
  sigaltstack(nullptr, &cur);
  const mode_t um = umask(027);
  char cwd[4096];
  const bool cwd_ok = getcwd(cwd, sizeof cwd) != nullptr && !strcmp(cwd, start_cwd);
  getrlimit(RLIMIT_NOFILE, &nofile);
  itimerval left;
  getitimer(ITIMER_REAL, &left);
  const bool timer_ok = left.it_value.tv_sec > 99000 && left.it_value.tv_sec <= 100000;
  printf("total %016llx usr1=%d clock=%d brk=%d rseq=%d mask=%d altstack=%d umask=%03o cwd=%d nofile=%llu itimer=%d\n",
         static_cast<unsigned long long>(total), int(g_usr1), clock_ok, brk_ok, rseq_registered(),
         sigismember(&mask, SIGWINCH), cur.ss_sp == altstack, unsigned(um), cwd_ok,
         static_cast<unsigned long long>(nofile.rlim_cur), timer_ok);
  if (data_fd >= 0) {
    off_t end = lseek(data_fd, 0, SEEK_CUR);
    printf("data offset %lld\n", static_cast<long long>(end));
  }
  if (list_fds) {
    printf("fds");
    static bool now[900];
    open_fds(now);
    for (int fd = 0; fd < 900; fd++) {
      if (now[fd] && !inherited[fd]) printf(" %d", fd);
    }
    printf("\n");
  }
  return exit_code;
}
