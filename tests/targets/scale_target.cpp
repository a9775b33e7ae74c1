// A target program whose costs grow with a count: many mappings, a fork after each of many
// mappings, many threads at once. Each scenario checks its memory itself and prints a
// deterministic account on stdout (the end-to-end tests compare it byte for byte with a run
// without the shim); the time to the scenario's milestone goes to stderr, for scripts/bench_scale.sh.
//
//   scale_target mappings N [S]    N separate 64 KiB mappings; one page of every S-th (default
//                                  every one) written and read back, then every other one of
//                                  those unmapped and the rest read again
//   scale_target mmap-fork N MIB   N times: map MIB MiB, write one page of it, fork; each child
//                                  reads its parent's pages (this mapping's and the first one's)
//   scale_target threads N         N threads at once that each start, write their stack, wait on
//                                  one barrier with main, and exit; main joins them all
//   scale_target thread-chains N G N chains of G threads (as CRIU's zdtm thread-bomb): each thread
//                                  joins the one before it, starts the next and exits, while main
//                                  starts the N chains ("ready" once all N are started); with G 0
//                                  the chains never end and the program exits once ready
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

const size_t kPage = size_t(sysconf(_SC_PAGESIZE));

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

void milestone(const char* what, double since) { fprintf(stderr, "scale_target: %s %.6f s\n", what, now_s() - since); }

char* map_anon(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  return static_cast<char*>(p);
}

int mappings(long n, long stride) {
  const double t0 = now_s();
  const size_t size = 64 * 1024;
  std::vector<char*> maps(static_cast<size_t>(n));
  for (long i = 0; i < n; i++) maps[size_t(i)] = map_anon(size);
  // A different page of each, so that neighbours' pages differ.
  for (long i = 0; i < n; i += stride) maps[size_t(i)][size_t(i % 16) * kPage] = char(i % 251 + 1);
  long bad = 0, unmapped = 0;
  for (long i = 0; i < n; i += stride) bad += maps[size_t(i)][size_t(i % 16) * kPage] != char(i % 251 + 1);
  for (long i = 0; i < n; i += 2 * stride, unmapped++) munmap(maps[size_t(i)], size);
  for (long i = stride; i < n; i += 2 * stride) {
    bad += maps[size_t(i)][size_t(i % 16) * kPage] != char(i % 251 + 1);
    bad += maps[size_t(i)][size_t((i + 1) % 16) * kPage] != 0;  // never written: zeros
  }
  milestone("done", t0);
  printf("%ld mappings, %ld unmapped, %ld pages wrong\n", n, unmapped, bad);
  return bad ? 1 : 0;
}

int mmap_fork(long n, long mib) {
  const double t0 = now_s();
  const size_t size = size_t(mib) << 20;
  char* first = nullptr;
  long children_ok = 0;
  for (long i = 0; i < n; i++) {
    char* m = map_anon(size);
    if (!first) first = m;
    m[size / 2] = char(i % 251 + 1);
    const pid_t child = fork();
    if (child < 0) {
      perror("fork");
      return 2;
    }
    if (child == 0) _exit(m[size / 2] == char(i % 251 + 1) && first[size / 2] == 1 && m[0] == 0 ? 0 : 1);
    int status = 0;
    if (waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0) children_ok++;
  }
  milestone("done", t0);
  printf("%ld mappings of %ld MiB, %ld forks, %ld children saw their parent's pages\n", n, mib, n, children_ok);
  return children_ok == n ? 0 : 1;
}

pthread_barrier_t barrier;
std::atomic<long> stack_sum{0};

void* barrier_thread(void* arg) {
  const long i = long(reinterpret_cast<intptr_t>(arg));
  volatile char frame[2048];
  for (size_t k = 0; k < sizeof frame; k += 512) frame[k] = char(i);
  long sum = 0;
  for (size_t k = 0; k < sizeof frame; k += 512) sum += frame[k] == char(i);
  stack_sum.fetch_add(sum);
  pthread_barrier_wait(&barrier);
  return reinterpret_cast<void*>(intptr_t(i));
}

int threads(long n) {
  const double t0 = now_s();
  std::vector<pthread_t> ids(static_cast<size_t>(n));
  pthread_barrier_init(&barrier, nullptr, unsigned(n + 1));
  for (long i = 0; i < n; i++) {
    if (int err = pthread_create(&ids[size_t(i)], nullptr, barrier_thread, reinterpret_cast<void*>(intptr_t(i)))) {
      fprintf(stderr, "pthread_create: %s\n", strerror(err));
      return 2;
    }
  }
  milestone("started", t0);
  pthread_barrier_wait(&barrier);
  long joined = 0;
  for (long i = 0; i < n; i++) {
    void* r = nullptr;
    pthread_join(ids[size_t(i)], &r);
    joined += long(reinterpret_cast<intptr_t>(r)) == i;
  }
  milestone("done", t0);
  printf("%ld threads met at the barrier, %ld joined with their own result, stack checks %ld of %ld\n", n, joined,
         stack_sum.load(), n * 4);
  return joined == n && stack_sum.load() == n * 4 ? 0 : 1;
}

struct Link {
  pthread_t before;
  bool has_before;
  long left;  // threads of the chain still to run, this one included (0: no end)
};

std::atomic<long> generations{0};
pthread_mutex_t chains_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t chain_ended = PTHREAD_COND_INITIALIZER;
long chains_done = 0;

void* chain_thread(void* arg) {
  Link* link = static_cast<Link*>(arg);
  if (link->has_before) pthread_join(link->before, nullptr);
  generations.fetch_add(1);
  if (link->left == 1) {
    delete link;
    pthread_mutex_lock(&chains_lock);
    chains_done++;
    pthread_cond_signal(&chain_ended);
    pthread_mutex_unlock(&chains_lock);
    return nullptr;
  }
  Link* next = new Link{pthread_self(), true, link->left > 1 ? link->left - 1 : 0};
  delete link;
  pthread_t t;
  if (pthread_create(&t, nullptr, chain_thread, next)) abort();
  return nullptr;
}

int thread_chains(long n, long g) {
  const double t0 = now_s();
  for (long i = 0; i < n; i++) {
    pthread_t t;
    if (int err = pthread_create(&t, nullptr, chain_thread, new Link{pthread_t(), false, g})) {
      fprintf(stderr, "pthread_create: %s\n", strerror(err));
      return 2;
    }
  }
  milestone("ready", t0);
  if (g == 0) {
    printf("%ld chains started\n", n);
    fflush(stdout);
    exit(0);  // the chains are still running: exit_group ends them
  }
  // Each chain's last thread is joined by nobody: it says when it has run.
  pthread_mutex_lock(&chains_lock);
  while (chains_done < n) pthread_cond_wait(&chain_ended, &chains_lock);
  pthread_mutex_unlock(&chains_lock);
  milestone("done", t0);
  printf("%ld chains of %ld threads, %ld threads ran\n", n, g, generations.load());
  return generations.load() == n * g ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s mappings N | mmap-fork N MIB | threads N | thread-chains N G\n", argv[0]);
    return 2;
  }
  const char* mode = argv[1];
  const long n = atol(argv[2]);
  const long m = argc > 3 ? atol(argv[3]) : 1;
  if (!strcmp(mode, "mappings")) return mappings(n, m);
  if (!strcmp(mode, "mmap-fork")) return mmap_fork(n, m);
  if (!strcmp(mode, "threads")) return threads(n);
  if (!strcmp(mode, "thread-chains")) return thread_chains(n, m);
  fprintf(stderr, "unknown scenario %s\n", mode);
  return 2;
}
