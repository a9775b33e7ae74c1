// A launcher for the fail-open tests: `as_nobody program [args...]` runs program as the
// unprivileged user nobody (uid and gid 65534, no supplementary groups, no capabilities). Such a
// user may not call userfaultfd(2) for kernel-mode faults when vm.unprivileged_userfaultfd is 0,
// nor open a root-only /dev/userfaultfd: the situation of a normal user on a hardened machine.
//
// It must be started as root. It fails loudly (exit 126, a message on stderr) rather than run the
// program with any privilege left, since a test would then prove nothing.
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

[[noreturn]] void die(const char* what) {
  int err = errno;
  std::fprintf(stderr, "as_nobody: %s: %s\n", what, err ? std::strerror(err) : "check failed");
  std::_Exit(126);
}

// The "CapEff:" (or other) line of /proc/self/status, as hex; -1 if missing.
long long cap_set(const char* key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  std::string prefix = std::string(key) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size()), nullptr, 16);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: as_nobody program [args...]\n");
    return 2;
  }
  if (geteuid() != 0) {
    errno = 0;
    die("must be started as root (to drop to uid 65534)");
  }
  // Groups first: once the uid is dropped, changing groups is no longer allowed.
  const gid_t groups[] = {kNogroup};
  if (setgroups(1, groups) != 0) die("setgroups");
  if (setgid(kNogroup) != 0) die("setgid");
  if (setuid(kNobody) != 0) die("setuid");

  // Trust nothing: check every id and that no capability survived.
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  errno = 0;
  if (getresuid(&ru, &eu, &su) != 0 || ru != kNobody || eu != kNobody || su != kNobody) die("uid is not 65534");
  if (getresgid(&rg, &eg, &sg) != 0 || rg != kNogroup || eg != kNogroup || sg != kNogroup) die("gid is not 65534");
  gid_t now[8];
  int n = getgroups(8, now);
  if (n != 1 || now[0] != kNogroup) die("supplementary groups are not just 65534");
  if (cap_set("CapEff") != 0 || cap_set("CapPrm") != 0) die("capabilities survived the uid change");
  if (setuid(0) == 0) {
    errno = 0;
    die("could become root again");
  }

  execvp(argv[1], argv + 1);
  int err = errno;
  std::fprintf(stderr, "as_nobody: cannot run '%s': %s\n", argv[1], std::strerror(err));
  return err == ENOENT ? 127 : 126;
}
