// Runs a program and samples its anonymous memory while it runs, for scripts/coverage.sh.
//
//   coverage_probe [--smaps] OUT -- prog args...
//
// The program's stdout goes to OUT (stdin and stderr are inherited). Every 2 ms the probe reads
// RssAnon from /proc/PID/status and keeps the peak. With --smaps it also reads /proc/PID/smaps every
// 20 ms and keeps, at the sample with the most anonymous memory, how much of it lay in mappings
// registered with a userfaultfd (VmFlags `um`); mappings in the shim's aside area
// (0x200000000000-0x300000000000) count in neither. Prints one line:
//   exit=N wall_ms=N peak_anon_kb=N [smaps_anon_kb=N smaps_registered_kb=N]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

long rss_anon_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::strtol(line.c_str() + 8, nullptr, 10);
  }
  return -1;
}

struct SmapsSample {
  long anon_kb = 0, registered_kb = 0;
};

bool read_smaps(pid_t pid, SmapsSample* out) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
  if (!f) return false;
  std::string line;
  SmapsSample s;
  bool aside = false;
  long anon = 0;
  auto flush = [&](bool um) {
    if (aside) return;
    s.anon_kb += anon;
    if (um) s.registered_kb += anon;
  };
  bool any = false;
  while (std::getline(f, line)) {
    unsigned long start, end;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2 && line.find('-') < 17) {
      aside = start >= 0x200000000000ul && start < 0x300000000000ul;
      anon = 0;
      any = true;
    } else if (line.rfind("Anonymous:", 0) == 0) {
      anon = std::strtol(line.c_str() + 10, nullptr, 10);
    } else if (line.rfind("VmFlags:", 0) == 0) {
      flush(line.find(" um") != std::string::npos);
    }
  }
  if (any) *out = s;
  return any;
}

}  // namespace

int main(int argc, char** argv) {
  int i = 1;
  bool smaps = false;
  if (i < argc && !std::strcmp(argv[i], "--smaps")) {
    smaps = true;
    i++;
  }
  if (argc - i < 3 || std::strcmp(argv[i + 1], "--")) {
    std::fprintf(stderr, "usage: coverage_probe [--smaps] OUT -- prog args...\n");
    return 2;
  }
  const char* out = argv[i];
  char** cmd = argv + i + 2;
  const uint64_t t0 = now_ns();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0) _exit(127);
    close(fd);
    execvp(cmd[0], cmd);
    _exit(127);
  }
  long peak = 0;
  SmapsSample best;
  uint64_t next_smaps = 0;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    long kb = rss_anon_kb(pid);
    if (kb > peak) peak = kb;
    if (smaps && now_ns() >= next_smaps) {
      SmapsSample s;
      if (read_smaps(pid, &s) && s.anon_kb > best.anon_kb) best = s;
      next_smaps = now_ns() + 20000000ull;
    }
    usleep(2000);
  }
  const uint64_t wall_ms = (now_ns() - t0) / 1000000ull;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::printf("exit=%d wall_ms=%llu peak_anon_kb=%ld", code, (unsigned long long)wall_ms, peak);
  if (smaps) std::printf(" smaps_anon_kb=%ld smaps_registered_kb=%ld", best.anon_kb, best.registered_kb);
  std::printf("\n");
  return 0;
}
