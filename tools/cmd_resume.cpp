// `uffdlazy resume FILE [--eager] [--strict] [--stats] [--report FILE] [--verify page|none]
// [--prefetch MODE] [--readahead N] [--checkpoint-to FILE] [--incremental]`:
// continues a checkpointed process where it stopped, in this terminal (stdin, stdout and stderr
// are the caller's), with its exit status. Checks the image, then execs the freestanding
// restorer (tools/restorer/), which becomes the process.
#include <fcntl.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/env_config.h"
#include "core/base/line_writer.h"
#include "core/checkpoint/resume_protocol.h"
#include "core/snapshot/process_image.h"
#include "core/snapshot/snapshot_reader.h"
#include "core/uffd/userfaultfd.h"
#include "tools/commands.h"
#include "tools/launcher.h"
#include "tools/remote/location.h"

namespace uffdlazy::cli {

namespace {

const char kUsage[] =
    "usage: uffdlazy resume FILE [options]\n"
    "\n"
    "Continues the process checkpointed in FILE (uffdlazy checkpoint) where it stopped: same\n"
    "memory layout, threads, registers, files and signal state, with this terminal's stdin,\n"
    "stdout and stderr; exits with the program's status. Its large anonymous memory is served\n"
    "lazily by the shim's monitor inside the resumed process; the rest is put in place first.\n"
    "\n"
    "options:\n"
    "  --eager           put every page in place before the program continues\n"
    "  --strict          exit with status 3 rather than resume eagerly when no userfaultfd\n"
    "                    that handles kernel faults is available\n"
    "  --prefetch MODE   what the monitor installs while the program runs without faulting:\n"
    "                    all (every lazy page, in the background; default), none (on demand\n"
    "                    only) or ws (as none: a process image has no working set);\n"
    "                    UFFDLAZY_PREFETCH does the same\n"
    "  --readahead N     most pages one fault brings in (1 to 4096, default 1024; 1: one\n"
    "                    page per fault); UFFDLAZY_READAHEAD does the same\n"
    "  --stats           at exit: how long the resume took (launch to running, and with\n"
    "                    prefetch all to every page in place) and the fault account\n"
    "  --report FILE     write the JSON fault report at exit\n"
    "  --verify page|none  checksum every page before it is used (default page)\n"
    "  --checkpoint-to FILE  a later checkpoint of the resumed process (its trigger is armed\n"
    "                    as it was) writes FILE instead of the path it was started with\n"
    "  --incremental     later checkpoints of the resumed process store only the pages it\n"
    "                    changed, and refer to FILE for the rest (an image taken with\n"
    "                    `checkpoint --incremental` does so without being asked)\n"
    "\n"
    "An incremental image is resumed with the images it builds on, which must be where they\n"
    "were written (or beside it) and unchanged; `uffdlazy compact` makes one that stands alone.\n"
    "\n"
    "Paging settings (prefetch, readahead) are this call's, not the checkpointed process's;\n"
    "verification, stats and the report too (options above). The rest of the shim's settings\n"
    "are the checkpointed process's.\n"
    "\n"
    "Exit status: the program's; 2 when the image cannot be resumed here (one line says why),\n"
    "3 with --strict and no userfaultfd.\n";

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

std::string find_restorer() {
  if (const char* r = getenv("UFFDLAZY_RESTORER"); r && *r) return r;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  self[n] = 0;
  std::string dir(self);
  dir = dir.substr(0, dir.rfind('/'));
  for (const std::string& c : {dir + "/uffdlazy-restorer", dir + "/../lib/uffdlazy/uffdlazy-restorer"}) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

// The resume call's UFFDLAZY_PREFETCH and UFFDLAZY_READAHEAD (then --prefetch, --readahead, which
// win), checked as the shim checks them. UFFDLAZY_WS and UFFDLAZY_WS_RECORD are refused: a working
// set names the pages of a snapshot for `restore`, and nothing records one for a process image.
bool paging_settings(const std::vector<std::string>& given, uint32_t* prefetch, uint32_t* readahead) {
  std::vector<std::string> vars;
  for (char** e = environ; e && *e; e++) {
    for (const char* name : {"UFFDLAZY_PREFETCH=", "UFFDLAZY_READAHEAD="}) {
      if (!std::strncmp(*e, name, std::strlen(name))) vars.push_back(*e);
    }
    for (const char* name : {"UFFDLAZY_WS=", "UFFDLAZY_WS_RECORD="}) {
      if (!std::strncmp(*e, name, std::strlen(name))) {
        std::fprintf(stderr, "uffdlazy resume: %.*s cannot be used with resume: a working set belongs to a snapshot "
                     "for `uffdlazy restore`, and a process image has none\n", int(std::strlen(name) - 1), name);
        return false;
      }
    }
  }
  vars.insert(vars.end(), given.begin(), given.end());
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  Config cfg;
  LineWriter err;
  if (!parse_config(envp.data(), &cfg, &err)) {
    std::fprintf(stderr, "uffdlazy resume: %.*s\n", int(err.size()), err.data());
    return false;
  }
  *prefetch = cfg.prefetch == Config::kPrefetchNone          ? ckpt::kResumePrefetchNone
              : cfg.prefetch == Config::kPrefetchWorkingSet ? ckpt::kResumePrefetchWorkingSet
                                                            : ckpt::kResumePrefetchAll;
  *readahead = uint32_t(cfg.readahead);
  return true;
}

}  // namespace

int cmd_resume(int argc, char** argv) {
  const uint64_t launch = now_ns();
  const char* path = nullptr;
  bool eager = false, strict = false, stats = false, verify = true, incremental = false;
  std::string report, checkpoint_to;
  std::vector<std::string> paging;  // --prefetch, --readahead as the variables they stand for
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--eager") {
      eager = true;
    } else if (a == "--strict") {
      strict = true;
    } else if (a == "--stats") {
      stats = true;
    } else if (a == "--incremental") {
      incremental = true;
    } else if ((a == "--prefetch" || a == "--readahead") && i + 1 < argc) {
      paging.push_back((a == "--prefetch" ? "UFFDLAZY_PREFETCH=" : "UFFDLAZY_READAHEAD=") + std::string(argv[++i]));
    } else if ((a == "--report" || a == "--verify" || a == "--checkpoint-to") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--checkpoint-to") {
        checkpoint_to = absolute_path(v);
      } else if (a == "--report") {
        report = absolute_path(v);
      } else if (v == "page" || v == "none") {
        verify = v == "page";
      } else {
        std::fprintf(stderr, "uffdlazy resume: --verify takes page or none\n");
        return 2;
      }
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "uffdlazy resume: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    } else if (!path) {
      path = argv[i];
    } else {
      std::fprintf(stderr, "uffdlazy resume: one image at a time\n%s", kUsage);
      return 2;
    }
  }
  if (!path) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (remote::is_remote(path)) {
    std::fprintf(stderr, "uffdlazy: resume %s: resuming from a URL is not built yet; pull the image first "
                 "(uffdlazy pull URL FILE)\n", path);
    return 2;
  }
  uint32_t prefetch = ckpt::kResumePrefetchAll, readahead = 1024;
  if (!paging_settings(paging, &prefetch, &readahead)) return 2;
  const std::string image = absolute_path(path);
  // Everything but the page data is checked here, before the restorer takes over.
  snap::SnapshotReader reader;
  snap::ReadStatus st = reader.open(image.c_str());
  snap::ProcessImage process;
  if (st.ok() && !snap::ProcessImage::is_process_image(reader)) {
    std::fprintf(stderr, "uffdlazy: resume %s: not a process image (a snapshot for `uffdlazy restore`?)\n",
                 image.c_str());
    return 2;
  }
  // 1.x snapshots are still read (restore, inspect); a 1.x process image is not resumed (the
  // restorer reads 2.0's index only).
  if (st.ok() && reader.header().version_major < snap::kVersionMajor) {
    std::fprintf(stderr,
                 "uffdlazy: resume %s: a process image of format %u.%u, written by an older uffdlazy: checkpoint the "
                 "program again\n",
                 image.c_str(), reader.header().version_major, reader.header().version_minor);
    return 2;
  }
  if (st.ok()) st = process.open(reader);
  // An incremental image's unchanged pages are in the images it builds on: each must be there
  // and be the file it was written against, before anything starts.
  if (st.ok()) st = reader.open_ancestors(image.c_str());
  if (!st.ok()) {
    LineWriter w;
    snap::describe(st, w);
    std::fprintf(stderr, "uffdlazy: resume %s: %.*s\n", image.c_str(), int(w.size()), w.data());
    return 2;
  }
  // The same user (the restorer checks this too, with the rest, before it changes anything).
  if (process.process().uid != getuid() || process.process().euid != geteuid()) {
    std::fprintf(stderr, "uffdlazy: resume %s: the process ran as uid %u, and this is uid %u\n", image.c_str(),
                 process.process().uid, unsigned(getuid()));
    return 2;
  }
  bool lazy = !eager;
  if (lazy) {
    Userfaultfd probe;
    UffdOpenFailure why;
    if (probe.open(false, &why)) {
      probe.close();
    } else {
      const int e = why.syscall_errno ? why.syscall_errno : why.api_errno;
      std::fprintf(stderr, "uffdlazy: resume %s: no userfaultfd that handles kernel faults (userfaultfd(2): %s; "
                   "/dev/userfaultfd: %s)%s\n", image.c_str(), std::strerror(e),
                   why.device_errno ? std::strerror(why.device_errno) : "refused", strict ? ", and --strict was given" : "; resuming eagerly");
      if (strict) return 3;
      lazy = false;
    }
  }
  const std::string restorer = find_restorer();
  if (restorer.empty()) {
    std::fprintf(stderr, "uffdlazy resume: cannot find uffdlazy-restorer next to the uffdlazy binary; set "
                         "UFFDLAZY_RESTORER to its path\n");
    return 2;
  }
  reader.close();
  int fd = open(image.c_str(), O_RDONLY);
  if (fd < 0) {
    std::fprintf(stderr, "uffdlazy: resume %s: %s\n", image.c_str(), std::strerror(errno));
    return 2;
  }
  std::vector<std::string> args = {"uffdlazy-restorer", "fd=" + std::to_string(fd), "launch=" + std::to_string(launch),
                                    std::string("lazy=") + (lazy ? "1" : "0"), std::string("strict=") + (strict ? "1" : "0"),
                                    std::string("stats=") + (stats ? "1" : "0"), std::string("verify=") + (verify ? "1" : "0"),
                                    "prefetch=" + std::to_string(prefetch), "readahead=" + std::to_string(readahead),
                                    "image=" + image};
  if (!report.empty()) args.push_back("report=" + report);
  if (!checkpoint_to.empty()) args.push_back("checkpoint=" + checkpoint_to);
  if (incremental) args.push_back("incremental=1");
  if (const char* t = getenv("UFFDLAZY_RESTORER_TRACE"); t && *t == '1') args.push_back("trace=1");
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  char* no_env[] = {nullptr};
  execve(restorer.c_str(), argp.data(), no_env);
  std::fprintf(stderr, "uffdlazy resume: cannot run %s: %s\n", restorer.c_str(), std::strerror(errno));
  return 2;
}

}  // namespace uffdlazy::cli
