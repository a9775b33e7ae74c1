#include "tools/launcher.h"

#include "tools/remote/location.h"

#include "core/pager/run_state.h"
#include "tools/part_paths.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace uffdlazy::cli {

std::string absolute_path(const std::string& path) {
  if (path.empty() || path[0] == '/' || remote::is_remote(path)) return path;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return path;
  return std::string(cwd) + "/" + path;
}

namespace {

// Sets up this process's environment and personality for the program and execs it. Returns
// only on failure (with a message, status 2, 126 or 127).
int exec_program(const Launch& launch, const char* command, const std::string& shim) {
  for (const auto& [k, v] : launch.env) setenv(k.c_str(), v.c_str(), 1);
  // Keep whatever the user already preloads, after the shim.
  std::string preload = shim;
  if (const char* old = getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  for (const char* own : kPartVariables) unsetenv(own);  // the command's, not the shim's
  // The process the program runs in (the same through every exec of a wrapper): its summary line
  // is marked as the program's among the lines of a wrapper's other processes.
  setenv("UFFDLAZY_PROGRAM_PID", std::to_string(getpid()).c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : launch.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (launch.no_aslr && personality(ADDR_NO_RANDOMIZE | personality(0xffffffff)) < 0) {
    std::fprintf(stderr, "uffdlazy %s: cannot turn address-space randomisation off: %s\n", command, std::strerror(errno));
    return 2;
  }
  execvp(args[0], args.data());
  int err = errno;
  std::fprintf(stderr, "uffdlazy %s: cannot run '%s': %s\n", command, args[0], std::strerror(err));
  return err == ENOENT ? 127 : 126;
}

std::string shim_or_complain(const char* command) {
  const PartPath shim = find_shim();
  if (shim.path.empty()) std::fprintf(stderr, "uffdlazy %s: %s\n", command, shim.problem.c_str());
  return shim.path;
}

volatile pid_t g_child = 0;

void forward(int sig, siginfo_t* info, void*) {
  // Sent by a process (kill, sigqueue): pass it on. From the terminal (the kernel) it has reached
  // the program already, which is in the same process group.
  if (info->si_code <= 0 && g_child > 0) kill(g_child, sig);
}

}  // namespace

int exec_under_shim(const Launch& launch, const char* command) {
  std::string shim = shim_or_complain(command);
  if (shim.empty()) return 2;
  return exec_program(launch, command, shim);
}

int spawn_under_shim(const Launch& launch, const char* command, RunOutcome* out) {
  std::string shim = shim_or_complain(command);
  if (shim.empty()) return 2;
  // The run's page: at a high descriptor, inherited by the program; this process holds it until
  // the program ends, so a program whose wrapper closed its copy still finds it (run_state.h).
  RunShared* run = nullptr;
  char run_name[RunState::kValueMax];
  int run_fd = RunState::create_page(&run, run_name, getpid());
  if (run_fd < 0) {
    std::fprintf(stderr, "uffdlazy %s: cannot create the run's shared page: %s\n", command, std::strerror(-run_fd));
    return 2;
  }
  run->launcher_pid = uint32_t(getpid());
  Launch child_launch = launch;
  child_launch.env["UFFDLAZY_RUN"] = run_name;

  static const int kForwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGWINCH, SIGURG, SIGPWR};
  struct sigaction sa = {};
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : kForwarded) sigaction(sig, &sa, nullptr);
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) sigaction(sig, &sa, nullptr);

  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "uffdlazy %s: fork: %s\n", command, std::strerror(errno));
    return 2;
  }
  if (pid == 0) {
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : kForwarded) sigaction(sig, &dfl, nullptr);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) sigaction(sig, &dfl, nullptr);
    _exit(exec_program(child_launch, command, shim));
  }
  g_child = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out->wait_status = status;
  out->restored = __atomic_load_n(&run->restored, __ATOMIC_ACQUIRE);
  out->captures_ok = __atomic_load_n(&run->captures_ok, __ATOMIC_ACQUIRE);
  out->captures_failed = __atomic_load_n(&run->captures_failed, __ATOMIC_ACQUIRE);
  return 0;
}

int pass_on_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, nullptr);
    signal(SIGCHLD, SIG_DFL);
    kill(getpid(), sig);
    return 128 + sig;
  }
  return 1;
}

}  // namespace uffdlazy::cli
