#include "tests/e2e/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace uffdlazy::test {

std::string shim_path() { return UFFDLAZY_SO; }
std::string cli_path() { return UFFDLAZY_CLI; }
std::string target_path(const std::string& name) { return std::string(UFFDLAZY_TARGETS_DIR) + "/" + name; }

namespace {

std::string read_small_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The value of "Key:" in a /proc status file.
std::string status_field(const std::string& status, const std::string& key) {
  const size_t at = status.find("\n" + key + ":\t");
  if (at == std::string::npos) return "?";
  const size_t start = at + key.size() + 3;
  return status.substr(start, status.find('\n', start) - start);
}

}  // namespace

PlainAndShim run_target_both_ways(const std::string& target, const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env, int timeout_seconds) {
  std::vector<std::string> argv = {target_path(target)};
  argv.insert(argv.end(), args.begin(), args.end());
  PlainAndShim r;
  RunOptions plain;
  plain.timeout_seconds = timeout_seconds;
  r.plain = run_process(argv, plain);
  RunOptions opt = plain;
  opt.with_shim = true;
  opt.env = {{"UFFDLAZY_STATS", "1"}, {"UFFDLAZY_STRICT", "1"}};
  for (const auto& [k, v] : env) opt.env[k] = v;
  r.shim = run_process(argv, opt);
  r.summary = summary_line(r.shim.err);
  return r;
}

std::string describe_stuck_processes(pid_t group) {
  std::string out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (dirent* d = readdir(proc)) {
    const pid_t pid = pid_t(atoi(d->d_name));
    if (pid <= 0 || (pid != group && getpgid(pid) != group)) continue;
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* tasks = opendir(task_dir.c_str());
    if (!tasks) continue;
    while (dirent* t = readdir(tasks)) {
      if (t->d_name[0] == '.') continue;
      const std::string base = task_dir + "/" + t->d_name;
      const std::string stat = read_small_file(base + "/stat");
      const size_t paren = stat.rfind(')');
      const char state = paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
      const std::string status = "\n" + read_small_file(base + "/status");
      out += "[thread " + std::to_string(pid) + "/" + t->d_name + " " + state + " wchan=" +
             read_small_file(base + "/wchan") + " comm=" + status_field(status, "Name") +
             " blocked=" + status_field(status, "SigBlk") + " pending=" + status_field(status, "SigPnd") +
             " shared=" + status_field(status, "ShdPnd") + "]\n";
    }
    closedir(tasks);
  }
  closedir(proc);
  return out;
}

ProcessResult run_process(const std::vector<std::string>& argv, const RunOptions& opt) {
  // A program that exits before reading all its input must not take the test down with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; e++) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // A test controls the shim's options itself; none leak in from the developer's shell.
  for (auto it = env.begin(); it != env.end();) {
    if (it->first.rfind("UFFDLAZY_", 0) == 0 || it->first == "LD_PRELOAD") {
      it = env.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& u : opt.unset) env.erase(u);
  if (opt.with_shim) env["LD_PRELOAD"] = shim_path();
  for (const auto& [k, v] : opt.env) env[k] = v;

  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    setpgid(0, 0);
    if (opt.close_inherited_fds) syscall(SYS_close_range, 3u, ~0u, 0u);
    execvpe(args[0], args.data(), envp.data());
    dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);

  ProcessResult res;
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (opt.stdin_data.empty()) {
    if (!opt.keep_stdin_open) close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt.timeout_seconds);
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    int n = poll(fds, in_fd >= 0 ? 3 : 2, 1000);
    if (std::chrono::steady_clock::now() > deadline) {
      res.err += "\n" + describe_stuck_processes(pid);
      kill(-pid, SIGKILL);
      res.err += "\n[test harness: killed after timeout]\n";
      break;
    }
    if (n <= 0) continue;
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR))) {
      ssize_t w = write(in_fd, opt.stdin_data.data() + written, opt.stdin_data.size() - written);
      if (w > 0) written += size_t(w);
      if (w < 0 || written == opt.stdin_data.size()) {
        if (!opt.keep_stdin_open) close(in_fd);
        in_fd = -1;
      }
    }
    for (int i = 0; i < 2; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? res.out : res.err).append(buf, size_t(r));
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  if (opt.keep_stdin_open) close(in_pipe[1]);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  return res;
}

std::string summary_line(const std::string& err, size_t nth) {
  size_t pos = 0;
  size_t seen = 0;
  while ((pos = err.find("uffdlazy: pid=", pos)) != std::string::npos) {
    size_t end = err.find('\n', pos);
    if (seen++ == nth) return err.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end;
  }
  return "";
}

long summary_field(const std::string& line, const std::string& key) {
  std::string needle = " " + key + "=";
  size_t p = line.find(needle);
  if (p == std::string::npos) return -1;
  return std::strtol(line.c_str() + p + needle.size(), nullptr, 10);
}

}  // namespace uffdlazy::test
