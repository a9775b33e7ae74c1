// A program whose snapshot capture at exit is killed: it fills 256 MiB, starts a thread that
// SIGKILLs the first child process of this process it finds (it has none of its own, so that can
// only be the shim's capture process, cloned while the program exits), and returns from main.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

// The pids listed in /proc/self/task/*/children, first one found.
long find_child() {
  DIR* d = opendir("/proc/self/task");
  if (!d) return 0;
  long found = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char path[300];
    std::snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE* f = std::fopen(path, "r");
    if (!f) continue;
    long pid = 0;
    if (std::fscanf(f, "%ld", &pid) == 1 && pid > 0) found = pid;
    std::fclose(f);
    if (found) break;
  }
  closedir(d);
  return found;
}

void* watch(void*) {
  const time_t deadline = time(nullptr) + 60;
  while (time(nullptr) < deadline) {
    long pid = find_child();
    if (pid > 0 && kill(pid_t(pid), SIGKILL) == 0) return nullptr;
  }
  return nullptr;
}

}  // namespace

int main() {
  const size_t bytes = size_t(256) << 20;
  char* p = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 3;
  for (size_t i = 0; i < bytes; i += 4096) std::memset(p + i, int(i / 4096 % 251) + 1, 4096);
  pthread_t t;
  if (pthread_create(&t, nullptr, watch, nullptr) != 0) return 3;
  pthread_detach(t);
  return 0;
}
