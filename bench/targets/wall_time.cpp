// wall_time: runs a command and appends one line about it to a file: its whole-process wall time
// (fork to exit, CLOCK_MONOTONIC), its exit status, and the CPU time it and its threads used.
// scripts/bench.sh times the restore benchmarks with it; the command's own output goes where the
// caller sends it.
//
//   wall_time OUT -- command args...
//   OUT gets: wall_ns=... status=... user_ns=... sys_ns=... maxrss_kb=...
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t tv_ns(const timeval& tv) { return uint64_t(tv.tv_sec) * 1000000000ull + uint64_t(tv.tv_usec) * 1000ull; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    std::fprintf(stderr, "usage: wall_time OUT -- command args...\n");
    return 2;
  }
  FILE* out = std::fopen(argv[1], "a");
  if (!out) {
    std::fprintf(stderr, "wall_time: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  const uint64_t start = now_ns();
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[3], argv + 3);
    std::fprintf(stderr, "wall_time: cannot run %s: %s\n", argv[3], strerror(errno));
    _exit(127);
  }
  if (pid < 0) {
    std::fprintf(stderr, "wall_time: fork: %s\n", strerror(errno));
    return 2;
  }
  int status = 0;
  rusage ru = {};
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  const uint64_t wall = now_ns() - start;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::fprintf(out, "wall_ns=%llu status=%d user_ns=%llu sys_ns=%llu maxrss_kb=%ld\n", (unsigned long long)wall, code,
               (unsigned long long)tv_ns(ru.ru_utime), (unsigned long long)tv_ns(ru.ru_stime), ru.ru_maxrss);
  std::fclose(out);
  return code;
}
