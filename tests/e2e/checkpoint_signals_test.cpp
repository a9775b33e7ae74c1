// A checkpoint is invisible to the program's blocking calls: each call the checkpoint interrupts
// (its trigger, then its stop signal) returns what it returns without the checkpoint, waits as
// long, and after a resume waits on for the time it had left (tests/targets/blocking_calls.cpp).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/resume_test_util.h"
#include "tests/e2e/snapshot_test_util.h"

namespace uffdlazy::test {
namespace {

ProcessResult reference(const std::vector<std::string>& calls, const std::string& input) {
  std::vector<std::string> argv = {target_path("blocking_calls")};
  argv.insert(argv.end(), calls.begin(), calls.end());
  RunOptions o = with_input(input, false);
  o.close_inherited_fds = true;
  o.timeout_seconds = 30;
  return run_process(argv, o);
}

// Runs argv with stdin, stdout and stderr on pipes; each time stderr says a checkpoint was
// written or refused, one byte goes to stdin (the program's helper waits for it before waking the
// main thread). Gives up (SIGKILL) after two minutes.
ProcessResult run_feeding_each_checkpoint(const std::vector<std::string>& argv) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return {};
  std::vector<char*> args;
  std::vector<std::string> copy = argv;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  signal(SIGPIPE, SIG_IGN);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    unsetenv("LD_PRELOAD");
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  ProcessResult r;
  std::string line;
  bool out_open = true, err_open = true;
  const time_t give_up = time(nullptr) + 120;
  while (out_open || err_open) {
    pollfd p[2] = {{out[0], short(out_open ? POLLIN : 0), 0}, {err[0], short(err_open ? POLLIN : 0), 0}};
    if (poll(p, 2, 1000) < 0 && errno != EINTR) break;
    if (time(nullptr) > give_up) {
      r.err += describe_stuck_processes(pid);
      kill(pid, SIGKILL);
      r.err += "[killed after 120 s]\n";
      break;
    }
    char buf[4096];
    if (p[0].revents) {
      const long n = read(out[0], buf, sizeof buf);
      if (n <= 0) out_open = false;
      else r.out.append(buf, size_t(n));
    }
    if (p[1].revents) {
      const long n = read(err[0], buf, sizeof buf);
      if (n <= 0) err_open = false;
      for (long i = 0; i < n; i++) {
        r.err += buf[i];
        if (buf[i] != '\n') {
          line += buf[i];
          continue;
        }
        if (line.find("uffdlazy: checkpoint ") != std::string::npos &&
            (line.find(" written: ") != std::string::npos || line.find(": refused: ") != std::string::npos)) {
          if (write(in[1], "y", 1) != 1) r.err += "[cannot feed stdin]\n";
        }
        line.clear();
      }
    }
  }
  close(in[1]);
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// Checkpointed (stop mode) inside each call, then resumed: the two halves of the output are the
// uninterrupted run's, and so is the status.
TEST(CheckpointSignals, EachBlockingCallCheckpointedAndResumedReturnsAsWithout) {
  const char* calls[] = {"nanosleep",  "nanosleep-null", "clock-abs", "sleep",  "usleep",     "poll-timeout",
                         "ppoll-timeout", "select-timeout", "pselect-timeout", "sigtimedwait-timeout",
                         "sem-timedwait", "cond-timedwait", "pause", "sigsuspend", "sigwaitinfo", "sigtimedwait",
                         "sigwait", "poll", "ppoll", "select", "pselect", "read", "sem-wait", "cond-wait", "join",
                         "semtimedop", "semop", "msgrcv", "msgsnd"};
  TempDir tmp;
  for (const char* call : calls) {
    SCOPED_TRACE(call);
    const ProcessResult expected = reference({call}, "y");
    ASSERT_EQ(expected.exit_code, 0) << expected.err;
    const std::string image = tmp.file(std::string(call) + ".img");
    RunOptions quick = with_input("", true);
    quick.timeout_seconds = 30;
    const ProcessResult ckpt = run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("blocking_calls"),
                                            call, "--trigger"},
                                           quick);
    ASSERT_EQ(ckpt.exit_code, 0) << ckpt.out << ckpt.err;
    ASSERT_NE(ckpt.err.find("checkpoint " + image + " written"), std::string::npos) << ckpt.err;
    quick = with_input("y", false);
    quick.timeout_seconds = 30;
    const ProcessResult resumed = run_process({cli_path(), "resume", image}, quick);
    EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_EQ(ckpt.out + resumed.out, expected.out) << ckpt.err << resumed.err;
  }
}

// In continue mode the running program is checkpointed inside each call in turn, and the calls
// on descriptors a checkpoint refuses (pipes, sockets, epoll, an AIO context) are interrupted all
// the same: the program prints exactly what it prints without the checkpoint.
TEST(CheckpointSignals, EachBlockingCallInARunningProgramReturnsAsWithout) {
  std::vector<std::string> calls = {
      "nanosleep", "nanosleep-null", "clock-abs", "sleep", "usleep", "poll-timeout", "ppoll-timeout",
      "select-timeout", "pselect-timeout", "epoll-timeout", "epoll-pwait-timeout", "epoll-pwait2-timeout",
      "sigtimedwait-timeout", "sem-timedwait", "cond-timedwait", "pause", "sigsuspend", "sigwaitinfo", "sigtimedwait",
      "sigwait", "poll", "ppoll", "select", "pselect", "read", "poll-pipe", "select-pipe", "read-pipe", "epoll",
      "epoll-pwait", "epoll-pwait2", "recv", "accept", "sem-wait", "cond-wait", "join", "recv-timeo", "read-timeo",
      "recvmsg-timeo", "recvmmsg-timeo", "accept-timeo", "send-timeo", "writev-timeo", "connect-timeo", "semtimedop",
      "io-getevents-timeout", "recv-timeo-woken", "accept-timeo-woken", "send-timeo-woken", "connect-timeo-woken",
      "semop", "msgrcv", "msgsnd", "io-getevents"};
  const ProcessResult expected = reference(calls, std::string(calls.size(), 'y'));
  ASSERT_EQ(expected.exit_code, 0) << expected.err;
  TempDir tmp;
  std::vector<std::string> argv = {cli_path(), "checkpoint", "-o", tmp.file("run.img"), "--then", "continue", "--",
                                   target_path("blocking_calls")};
  argv.insert(argv.end(), calls.begin(), calls.end());
  argv.insert(argv.end(), {"--trigger", "--sync"});
  const ProcessResult run = run_feeding_each_checkpoint(argv);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected.out) << run.err;
  EXPECT_EQ(count_of(run.err, " written: ") + count_of(run.err, ": refused: "), calls.size()) << run.err;
}

}  // namespace
}  // namespace uffdlazy::test

namespace uffdlazy::test {
namespace {

ProcessResult plain_run(const std::string& mode) {
  RunOptions o = with_input("y", false);
  o.close_inherited_fds = true;
  o.timeout_seconds = 30;
  return run_process({target_path("trigger_takeover"), mode}, o);
}

ProcessResult checkpoint_run(const std::string& image, const std::string& mode, const std::string& input, bool keep_open) {
  RunOptions o = with_input(input, keep_open);
  o.timeout_seconds = 30;
  return run_process({cli_path(), "checkpoint", "-o", image, "--", target_path("trigger_takeover"), mode}, o);
}

// A program that takes the trigger for itself (a handler, sigwait) keeps it and runs as without
// the shim; the checkpoint says so at once, and ends with status 4 and the reason, no image.
TEST(CheckpointTrigger, AProgramThatTakesTheTriggerSignalIsToldAndTheCheckpointExits4) {
  TempDir tmp;
  for (const char* mode : {"handler", "sigwait"}) {
    SCOPED_TRACE(mode);
    const ProcessResult expected = plain_run(mode);
    ASSERT_EQ(expected.exit_code, 0) << expected.err;
    const std::string image = tmp.file(std::string(mode) + ".img");
    const ProcessResult r = checkpoint_run(image, mode, "y", false);
    EXPECT_EQ(r.out, expected.out) << r.err;
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_NE(r.err.find("the program takes SIGUSR2, the checkpoint's trigger, for itself (" +
                         std::string(mode == std::string("handler") ? "sigaction" : "sigwait") + ")"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("no image written: the program took SIGUSR2"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("exit status 4"), std::string::npos) << r.err;
    EXPECT_FALSE(file_exists(image));
  }
  EXPECT_EQ(tmp.list(), std::vector<std::string>{});
}

// Blocking the trigger in every thread, or setting it to SIG_IGN, does not lose it: the
// checkpoint is taken, the program reads back what it set, and the resumed run ends as without.
TEST(CheckpointTrigger, BlockedOrIgnoredTheTriggerStillCheckpoints) {
  TempDir tmp;
  for (const char* mode : {"block", "ignore"}) {
    SCOPED_TRACE(mode);
    const ProcessResult expected = plain_run(mode);
    ASSERT_EQ(expected.exit_code, 0) << expected.err;
    const std::string image = tmp.file(std::string(mode) + ".img");
    const ProcessResult r = checkpoint_run(image, mode, "", true);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_NE(r.err.find(" written: "), std::string::npos) << r.err;
    RunOptions o = with_input("yy", false);
    o.timeout_seconds = 30;
    const ProcessResult resumed = run_process({cli_path(), "resume", image}, o);
    EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_EQ(r.out + resumed.out, expected.out) << resumed.err;
  }
}

// A program that daemonizes (daemon(3), or fork and the parent exits) before any checkpoint: the
// checkpoint does not follow the child; the command says so and exits 4. The child runs on as
// without the shim.
TEST(CheckpointTrigger, ADaemonizingProgramEndsTheCheckpointWithStatus4) {
  TempDir tmp;
  for (const char* mode : {"daemon", "fork-exit"}) {
    SCOPED_TRACE(mode);
    const ProcessResult expected = plain_run(mode);
    ASSERT_EQ(expected.exit_code, 0) << expected.err;
    const std::string image = tmp.file(std::string(mode) + ".img");
    const ProcessResult r = checkpoint_run(image, mode, "y", false);
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_EQ(r.out, expected.out) << r.err;
    EXPECT_NE(r.err.find("runs on (a daemon?); a checkpoint does not follow a child it forked; exit status 4"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(file_exists(image));
  }
}

}  // namespace
}  // namespace uffdlazy::test
