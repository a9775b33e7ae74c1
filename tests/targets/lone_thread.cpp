// A single-threaded program for checkpoint tests: asks for its own checkpoint (SIGUSR2, the
// default trigger), then waits for one byte on stdin (a blocked read: where the checkpoint finds
// it), prints it and exits. Its only thread is main.
#include <csignal>
#include <cstdio>
#include <unistd.h>

int main() {
  std::raise(SIGUSR2);
  char c = '?';
  const ssize_t n = read(0, &c, 1);
  std::printf("lone_thread: read %zd byte '%c'\n", n, n == 1 ? c : '?');
  return 0;
}
