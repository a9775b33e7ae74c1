// A target program for the descriptor tests: what a program sees of its descriptor numbers.
//
//   fd_numbers first_open        lists its open descriptors from 3 up ("fd N -> target"), then
//                                prints the number its first open() returns ("open=N"); it maps
//                                and touches 2 MiB so that a report or snapshot has something.
//   fd_numbers reuse_run_fd FILE under the shim: finds the run page's descriptor, writes a copy of
//                                the page's bytes to FILE, closes the descriptor and puts FILE at
//                                its number, then runs itself ("touch 4") as a child that loads the
//                                shim too, and checks that FILE still holds what it wrote.
//   fd_numbers touch [MIB]       maps and touches MIB MiB (2).
//   fd_numbers closefrom_exec PROG ARGS...
//                                a wrapper that closes every descriptor from 3 up, then execs PROG.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void touch(size_t mib = 2) {
  const size_t kBytes = mib << 20;
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  for (size_t i = 0; i < kBytes; i += page) static_cast<char*>(p)[i] = char(i / page + 1);
}

std::string target_of(int fd) {
  char link[64], target[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return "?";
  target[n] = 0;
  return target;
}

void list_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) {
    std::perror("/proc/self/fd");
    std::exit(1);
  }
  // In numeric order: the directory lists them so, but say it.
  bool open_fd[1 << 16] = {};
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd >= 3 && fd != dirfd(d) && fd < (1 << 16)) open_fd[fd] = true;
  }
  closedir(d);
  for (int fd = 3; fd < (1 << 16); fd++) {
    if (open_fd[fd]) std::printf("fd %d -> %s\n", fd, target_of(fd).c_str());
  }
}

int first_open() {
  list_fds();
  int fd = open("/dev/null", O_RDONLY);
  std::printf("open=%d\n", fd);
  touch();
  return fd >= 0 ? 0 : 1;
}

int find_run_fd() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd != dirfd(d) && target_of(fd).find("uffdlazy-run") != std::string::npos) found = fd;
  }
  closedir(d);
  return found;
}

int reuse_run_fd(const char* file, const char* self) {
  const int run = find_run_fd();
  if (run < 0) {
    std::printf("no run descriptor\n");
    return 1;
  }
  // The file looks exactly like the page: only its identity tells them apart.
  char copy[4096];
  if (pread(run, copy, sizeof copy, 0) != ssize_t(sizeof copy)) {
    std::perror("pread run page");
    return 1;
  }
  close(run);
  int f = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (f < 0 || write(f, copy, sizeof copy) != ssize_t(sizeof copy)) {
    std::perror(file);
    return 1;
  }
  if (f != run) {
    if (dup2(f, run) != run) {
      std::perror("dup2");
      return 1;
    }
    close(f);
  }
  std::printf("file at the run descriptor's number\n");
  std::fflush(stdout);
  touch();
  pid_t child = fork();
  if (child == 0) {
    // More memory than this process: its snapshot is the one a shared plain name keeps.
    execl(self, self, "touch", "4", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::printf("child failed (status %d)\n", status);
    return 1;
  }
  char now[sizeof copy + 1];
  ssize_t n = pread(run, now, sizeof now, 0);
  const bool same = n == ssize_t(sizeof copy) && std::memcmp(now, copy, sizeof copy) == 0;
  std::printf("file %s\n", same ? "unchanged" : "changed");
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && !std::strcmp(argv[1], "first_open")) return first_open();
  if (argc >= 2 && !std::strcmp(argv[1], "touch")) {
    touch(argc >= 3 ? size_t(std::atoi(argv[2])) : 2);
    return 0;
  }
  if (argc >= 3 && !std::strcmp(argv[1], "closefrom_exec")) {
    syscall(SYS_close_range, 3u, ~0u, 0u);
    execvp(argv[2], argv + 2);
    std::perror(argv[2]);
    return 127;
  }
  if (argc >= 3 && !std::strcmp(argv[1], "reuse_run_fd")) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = 0;
    return reuse_run_fd(argv[2], self);
  }
  std::fprintf(stderr, "usage: fd_numbers first_open | reuse_run_fd FILE | touch [MIB] | closefrom_exec PROG ARGS...\n");
  return 2;
}
