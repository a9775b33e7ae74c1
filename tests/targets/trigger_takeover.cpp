// A program that does something of its own with SIGUSR2, the checkpoint's default trigger.
//
//   trigger_takeover MODE
//
// handler: installs a handler for it, sends it, waits for it. sigwait: blocks it, sigwait()s for
// it, a thread sends it once the main thread waits. block: blocks it in every thread, sends it,
// then waits for a byte of stdin (the checkpoint must still happen). ignore: sets it to SIG_IGN and reads that back, sends it,
// then waits for a byte of stdin. daemon: daemon(1, 1); the child prints and exits. fork-exit:
// forks; the parent exits at once, the child prints once its parent is gone.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

volatile sig_atomic_t g_got = 0;
void on_usr2(int) { g_got = 1; }

sem_t g_done;
void* blocked_thread(void*) {
  while (sem_wait(&g_done) != 0) {
  }
  return nullptr;
}

pid_t g_main_tid;
// Sends SIGUSR2 to the process once the main thread waits in sigwait: in that system call, not
// merely asleep (it may sleep on its way there, in a page fault the shim serves; a signal sent
// then finds it blocked everywhere and not waited for, which the checkpoint takes for itself).
void* send_when_main_sleeps(void*) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", int(g_main_tid));
  for (;;) {
    char buf[256] = {};
    FILE* f = fopen(path, "r");
    if (f && fgets(buf, sizeof buf, f) && atol(buf) == SYS_rt_sigtimedwait) {
      fclose(f);
      break;
    }
    if (f) fclose(f);
    usleep(1000);
  }
  kill(getpid(), SIGUSR2);
  return nullptr;
}

void wait_for_stdin() {
  char c;
  if (read(0, &c, 1) != 1) printf("no input\n");
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  if (!strcmp(mode, "handler")) {
    struct sigaction sa = {};
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, nullptr);
    kill(getpid(), SIGUSR2);
    while (!g_got) pause();
    printf("handled\n");
  } else if (!strcmp(mode, "sigwait")) {
    sigprocmask(SIG_BLOCK, &usr2, nullptr);
    g_main_tid = pid_t(syscall(SYS_gettid));
    pthread_t t;
    pthread_create(&t, nullptr, send_when_main_sleeps, nullptr);
    int sig = 0;
    sigwait(&usr2, &sig);
    pthread_join(t, nullptr);
    printf("sigwait %d\n", sig);
  } else if (!strcmp(mode, "block")) {
    sigprocmask(SIG_BLOCK, &usr2, nullptr);
    sem_init(&g_done, 0, 0);
    pthread_t t;
    pthread_create(&t, nullptr, blocked_thread, nullptr);
    printf("blocked\n");
    fflush(stdout);
    kill(getpid(), SIGUSR2);
    wait_for_stdin();
    sem_post(&g_done);
    pthread_join(t, nullptr);
    printf("after\n");
  } else if (!strcmp(mode, "ignore")) {
    signal(SIGUSR2, SIG_IGN);
    struct sigaction now = {};
    sigaction(SIGUSR2, nullptr, &now);
    printf("ignored=%d\n", now.sa_handler == SIG_IGN);
    fflush(stdout);
    kill(getpid(), SIGUSR2);
    wait_for_stdin();
    printf("after\n");
  } else if (!strcmp(mode, "daemon")) {
    fflush(stdout);
    if (daemon(1, 1) != 0) return 3;
    printf("daemon child\n");
  } else if (!strcmp(mode, "fork-exit")) {
    fflush(stdout);
    const pid_t parent = getpid();
    if (fork() == 0) {
      while (getppid() == parent) usleep(1000);
      printf("child\n");
      return 0;
    }
  } else {
    return 2;
  }
  return 0;
}
