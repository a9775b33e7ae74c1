// `uffdlazy resume FILE [--eager] [--strict] [--stats] [--report FILE] [--verify page|none]
// [--prefetch MODE] [--readahead N] [--checkpoint-to FILE] [--incremental]`:
// continues a checkpointed process where it stopped, in this terminal (stdin, stdout and stderr
// are the caller's), with its exit status. Checks the image, then execs the freestanding
// restorer (tools/restorer/), which becomes the process.
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
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
#include "tools/option_parser.h"
#include "tools/part_paths.h"
#include "tools/remote/http_client.h"
#include "tools/remote/location.h"
#include "tools/remote/remote_snapshot.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--eager", .help = "put every page in place before the program continues"},
    {.name = "--strict",
     .help = "exit with status 3 rather than resume eagerly when no userfaultfd that handles kernel faults is "
             "available"},
    {.name = "--prefetch",
     .value = "MODE",
     .help = "what the monitor installs while the program runs without faulting: all (every lazy page, in "
             "the background) or none (on demand only); ws is none here (a process image has no working set)",
     .fallback = "all",
     .complete = Complete::kWords,
     .words = "all none ws",
     .variable = "UFFDLAZY_PREFETCH"},
    {.name = "--readahead",
     .value = "PAGES",
     .help = "most pages one fault brings in (1 to 4096; 1: one page per fault)",
     .fallback = "1024",
     .variable = "UFFDLAZY_READAHEAD"},
    {.name = "--verify",
     .value = "page|none",
     .help = "check every page's checksum before the program can see it",
     .fallback = "page",
     .complete = Complete::kWords,
     .words = "page none"},
    {.name = "--stats",
     .help = "at exit, print how long the resume took (launch to running; with prefetch all, to every page "
             "in place) and the fault account"},
    {.name = "--report",
     .value = "FILE",
     .help = "write the JSON fault report at exit",
     .complete = Complete::kFile,
     .path = true},
    {.name = "--checkpoint-to",
     .value = "FILE",
     .help = "a later checkpoint of the resumed process (its trigger is armed as it was) writes FILE instead "
             "of the path it was started with",
     .complete = Complete::kFile,
     .path = true},
    {.name = "--incremental",
     .help = "later checkpoints of the resumed process store only the pages it changed, and refer to FILE for "
             "the rest (an image taken with checkpoint --incremental does so without being asked)"},
};

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
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

// A child that ends as the one the program had: with its exit status, or killed by its signal
// (never with a core dump: the checkpoint refused those).
[[noreturn]] void end_like(const snap::ZombieState& z) {
  if (z.code == CLD_KILLED) {
    prctl(PR_SET_DUMPABLE, 0);  // no core file, whatever the signal's default
    signal(z.status, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, z.status);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
    kill(getpid(), z.status);
  }
  _exit(z.code == CLD_EXITED ? z.status : 127);
}

// One process image of a resume: the one given, or a child's (IMAGE.PID) in a process tree.
struct Member {
  std::string image;     // as given (a path, or the URL of an image fetched whole)
  std::string readable;  // what is opened: the file, or the fetched copy (/proc/self/fd/N)
  bool fetched = false;
  std::unique_ptr<snap::SnapshotReader> reader = std::make_unique<snap::SnapshotReader>();
  std::unique_ptr<snap::ProcessImage> process = std::make_unique<snap::ProcessImage>();
};

// Opens and checks `m->image` (`shown` names it in messages); false after one line saying why.
bool check_image(Member* m, const std::string& shown) {
  snap::SnapshotReader& reader = *m->reader;
  if (m->readable.empty()) m->readable = m->image;
  snap::ReadStatus st = reader.open(m->readable.c_str());
  if (st.ok() && !snap::ProcessImage::is_process_image(reader)) {
    std::fprintf(stderr, "uffdlazy: resume %s: not a process image (a snapshot for `uffdlazy restore`?)\n",
                 shown.c_str());
    return false;
  }
  // 1.x snapshots are still read (restore, inspect); a 1.x process image is not resumed (the
  // restorer reads 2.0's index only).
  if (st.ok() && reader.header().version_major < snap::kVersionMajor) {
    std::fprintf(stderr,
                 "uffdlazy: resume %s: a process image of format %u.%u, written by an older uffdlazy: checkpoint the "
                 "program again\n",
                 shown.c_str(), reader.header().version_major, reader.header().version_minor);
    return false;
  }
  if (st.ok()) st = m->process->open(reader);
  if (st.ok() && m->fetched && reader.ancestor_count() > 0) {
    std::fprintf(stderr, "uffdlazy: resume %s: an incremental image (it takes pages from the images it builds on): "
                 "only a whole image can be resumed from a URL\n", shown.c_str());
    return false;
  }
  // An incremental image's unchanged pages are in the images it builds on: each must be there
  // and be the file it was written against, before anything starts.
  if (st.ok()) st = reader.open_ancestors(m->readable.c_str());
  if (!st.ok()) {
    LineWriter w;
    snap::describe(st, w);
    std::fprintf(stderr, "uffdlazy: resume %s: %.*s\n", shown.c_str(), int(w.size()), w.data());
    return false;
  }
  // The same user (the restorer checks this too, with the rest, before it changes anything).
  if (m->process->process().uid != getuid() || m->process->process().euid != geteuid()) {
    std::fprintf(stderr, "uffdlazy: resume %s: the process ran as uid %u, and this is uid %u\n", shown.c_str(),
                 m->process->process().uid, unsigned(getuid()));
    return false;
  }
  return true;
}

// The images of the running children checkpointed with `process` (IMAGE.PID beside the root's
// image), and theirs, all checked; false after one line.
bool open_members(const snap::ProcessImage& process, const std::string& root_image,
                  std::map<int32_t, std::unique_ptr<Member>>* out) {
  for (uint32_t i = 0; i < process.object_count(); i++) {
    const snap::ObjectRecord& o = process.object(i);
    if (o.kind != uint32_t(snap::ObjectKind::kChild)) continue;
    if (out->count(o.zombie.pid) || out->size() >= ckpt::kMaxChildPids) {
      std::fprintf(stderr, "uffdlazy: resume %s: the process tree names child process %d twice\n", root_image.c_str(),
                   o.zombie.pid);
      return false;
    }
    auto m = std::make_unique<Member>();
    m->image = root_image + "." + std::to_string(o.zombie.pid);
    if (access(m->image.c_str(), F_OK) != 0) {
      std::fprintf(stderr, "uffdlazy: resume %s: the image of child process %d (%s) is missing: %s\n",
                   root_image.c_str(), o.zombie.pid, m->image.c_str(), std::strerror(errno));
      return false;
    }
    if (!check_image(m.get(), m->image)) return false;
    const snap::ProcessImage& child = *m->process;
    (*out)[o.zombie.pid] = std::move(m);
    if (!open_members(child, root_image, out)) return false;
  }
  return true;
}

struct Launch {
  std::string restorer;
  std::vector<std::string> base;       // for every process of the tree
  std::vector<std::string> root_only;  // --report, --checkpoint-to: the root's
  std::map<int32_t, std::unique_ptr<Member>>* members = nullptr;
  ckpt::ResumeBarrier* barrier = nullptr;  // a tree's (shared with every restorer), or null
};

// A process of the tree could not become its process: the others, waiting at the barrier, end too.
void refuse_barrier(const Launch& plan) {
  if (!plan.barrier) return;
  __atomic_store_n(&plan.barrier->failed, 1, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&plan.barrier->arrived, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &plan.barrier->arrived, FUTEX_WAKE, 1 << 30, nullptr, nullptr, 0);
}

// Becomes the process of `image` (execs the restorer); returns only if that failed (with a line).
void exec_restorer(const Launch& plan, const Member& m, const std::string& children, bool root) {
  const std::string& image = m.image;
  // The restorer's own descriptor of the image (inherited: no close-on-exec).
  const int fd = open(m.readable.c_str(), O_RDONLY);
  if (fd < 0) {
    std::fprintf(stderr, "uffdlazy: resume %s: %s\n", image.c_str(), std::strerror(errno));
    return;
  }
  std::vector<std::string> args = {"uffdlazy-restorer", "fd=" + std::to_string(fd)};
  args.insert(args.end(), plan.base.begin(), plan.base.end());
  if (root) args.insert(args.end(), plan.root_only.begin(), plan.root_only.end());
  if (!children.empty()) args.push_back("children=" + children);
  args.push_back("image=" + image);
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  char* no_env[] = {nullptr};
  execve(plan.restorer.c_str(), argp.data(), no_env);
  std::fprintf(stderr, "uffdlazy resume: cannot run %s: %s\n", plan.restorer.c_str(), std::strerror(errno));
}

// Makes the children of `process` again, in the order the kernel had them: a zombie ends at once
// the way it did; a running child makes its own children, then becomes its process. Lists them as
// OLD:NEW,... for the restorer; false (with a line) when one could not be made.
bool make_children(const Launch& plan, const snap::ProcessImage& process, const std::string& image,
                   std::string* list) {
  for (uint32_t i = 0; i < process.object_count(); i++) {
    const snap::ObjectRecord& o = process.object(i);
    const bool zombie = o.kind == uint32_t(snap::ObjectKind::kZombieChild);
    if (!zombie && o.kind != uint32_t(snap::ObjectKind::kChild)) continue;
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "uffdlazy: resume %s: cannot make child process %d again: %s\n", image.c_str(),
                   o.zombie.pid, std::strerror(errno));
      return false;
    }
    if (pid == 0 && zombie) end_like(o.zombie);
    if (pid == 0) {
      const Member& m = *plan.members->at(o.zombie.pid);
      std::string own;
      if (make_children(plan, *m.process, m.image, &own)) {
        m.reader->close();
        exec_restorer(plan, m, own, false);
      }
      refuse_barrier(plan);
      _exit(2);
    }
    if (zombie) {
      // Ended before the program runs (a waitpid with WNOHANG finds it at once), and left a zombie.
      siginfo_t si = {};
      while (waitid(P_PID, id_t(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
      }
    }
    if (!list->empty()) *list += ",";
    *list += std::to_string(o.zombie.pid) + ":" + std::to_string(pid);
  }
  return true;
}

int resume(int argc, char** argv) {
  const uint64_t launch = now_ns();
  ParsedArgs given;
  if (const int rc = parse_args(resume_verb, argc, argv, &given); rc != kParsed) return rc;
  const bool eager = given.has("--eager"), strict = given.has("--strict"), stats = given.has("--stats");
  const bool incremental = given.has("--incremental");
  const std::string* verify_mode = given.value("--verify");
  if (verify_mode && *verify_mode != "page" && *verify_mode != "none") {
    return usage_error(resume_verb, "--verify takes page or none, not '" + *verify_mode + "'");
  }
  const bool verify = !verify_mode || *verify_mode == "page";
  std::string report, checkpoint_to;
  if (const std::string* r = given.value("--report")) report = absolute_path(*r);
  if (const std::string* c = given.value("--checkpoint-to")) checkpoint_to = absolute_path(*c);
  std::vector<std::string> paging;  // --prefetch, --readahead as the variables they stand for
  for (const auto& [opt, value] : given.options) {
    if (opt->variable) paging.push_back(std::string(opt->variable) + "=" + value);
  }
  const char* path = given.operands[0].c_str();
  uint32_t prefetch = ckpt::kResumePrefetchAll, readahead = 1024;
  if (!paging_settings(paging, &prefetch, &readahead)) return 2;
  Member root;
  root.image = remote::is_remote(path) ? std::string(path) : absolute_path(path);
  // An image at a URL is fetched whole into memory first (every part in parallel, pinned to one
  // ETag, the index digest checked) and resumed from there, pages still installed lazily: a
  // lazily fetched resume (docs/remote.md, slice 6) is not built.
  remote::FetchedObject fetched;
  if (remote::is_remote(path)) {
    remote::Location loc;
    remote::ObjectClient client;
    std::string err;
    if (!remote::parse_location(path, &loc, &err) || !client.init(loc, &err) ||
        !remote::fetch_whole_object(client, &fetched, &err, nullptr) ||
        !remote::check_index_digest(fetched, loc.digest, &err)) {
      std::fprintf(stderr, "uffdlazy: resume %s: %s\n", path, err.c_str());
      return 2;
    }
    root.image = loc.text;
    root.readable = "/proc/self/fd/" + std::to_string(fetched.fd);
    root.fetched = true;
  }
  const std::string& image = root.image;
  // Everything but the page data is checked here, before the restorer takes over: the image, and
  // the images of the children that were checkpointed with it (a process tree).
  if (!check_image(&root, image)) return 2;
  std::map<int32_t, std::unique_ptr<Member>> members;
  if (root.fetched) {
    for (uint32_t i = 0; i < root.process->object_count(); i++) {
      if (root.process->object(i).kind != uint32_t(snap::ObjectKind::kChild)) continue;
      std::fprintf(stderr, "uffdlazy: resume %s: a process tree (its children's images are files beside it): "
                   "resuming one from a URL is not built; pull the images first\n", image.c_str());
      return 2;
    }
  }
  if (!open_members(*root.process, image, &members)) return 2;
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
  const PartPath found = find_restorer();
  if (found.path.empty()) {
    std::fprintf(stderr, "uffdlazy resume: %s\n", found.problem.c_str());
    return 2;
  }
  Launch plan;
  plan.restorer = found.path;
  plan.base = {"launch=" + std::to_string(launch), std::string("lazy=") + (lazy ? "1" : "0"),
               std::string("strict=") + (strict ? "1" : "0"), std::string("stats=") + (stats ? "1" : "0"),
               std::string("verify=") + (verify ? "1" : "0"), "prefetch=" + std::to_string(prefetch),
               "readahead=" + std::to_string(readahead)};
  if (incremental) plan.base.push_back("incremental=1");
  if (const char* t = getenv("UFFDLAZY_RESTORER_TRACE"); t && *t == '1') plan.base.push_back("trace=1");
  if (!report.empty()) plan.root_only.push_back("report=" + report);
  if (!checkpoint_to.empty()) plan.root_only.push_back("checkpoint=" + checkpoint_to);
  plan.members = &members;
  // A tree resumes whole or not at all: every process's restorer waits at one barrier before its
  // point of no return (ckpt::ResumeBarrier).
  if (!members.empty()) {
    const int fd = int(syscall(SYS_memfd_create, "uffdlazy-resume-barrier", 0));
    void* page = fd >= 0 && ftruncate(fd, 4096) == 0 ? mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                                                      : MAP_FAILED;
    if (page == MAP_FAILED) {
      std::fprintf(stderr, "uffdlazy: resume %s: cannot make the process tree's resume barrier: %s\n", image.c_str(),
                   std::strerror(errno));
      return 2;
    }
    plan.barrier = static_cast<ckpt::ResumeBarrier*>(page);
    plan.barrier->expected = int32_t(1 + members.size());
    plan.base.push_back("barrier=" + std::to_string(fd));
  }
  // The children, made again last (nothing can be refused after them): each a child of this
  // process, which becomes the resumed one; zombies ended the same way and not waited for, the
  // others resumed from their own images by processes of their own.
  std::string children;
  if (!make_children(plan, *root.process, image, &children)) {
    refuse_barrier(plan);
    return 2;
  }
  root.reader->close();
  exec_restorer(plan, root, children, true);
  refuse_barrier(plan);
  return 2;
}

}  // namespace

const VerbSpec resume_verb = {
    .name = "resume",
    .summary = "continue a checkpointed process where it stopped",
    .synopsis = "FILE [options]",
    .description =
        "Continues the process checkpointed in FILE (uffdlazy checkpoint) where it stopped: the same memory "
        "layout, threads, registers, open files and signal state, in this terminal (stdin, stdout and stderr "
        "are the caller's), with the program's exit status. Its large anonymous memory is served lazily by "
        "the shim's monitor inside the resumed process; the rest is put in place first. An image can be "
        "resumed any number of times.\n\n"
        "How the memory arrives (--prefetch, --readahead, or UFFDLAZY_PREFETCH and UFFDLAZY_READAHEAD in "
        "this call's environment; an option wins), --verify, --stats and --report are this call's; every "
        "other setting of the shim is the checkpointed process's.\n\n"
        "An incremental image (checkpoint --incremental) is resumed with the images it builds on, which must "
        "be where they were written (or beside it) and unchanged; uffdlazy compact makes one that stands "
        "alone. A process image written by uffdlazy before format 2.0 is not resumed: checkpoint the program "
        "again.",
    .options = kOptions,
    .operand = "FILE",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kFile,
    .exit_status = "N    the program's own status\n"
                   "1    a page put in place before the program continues failed its checksum\n"
                   "2    a bad option, or the image cannot be resumed here (one line says why: another "
                   "kernel, CPU or user, a changed file, not a process image, a missing or replaced "
                   "parent image, ...)\n"
                   "3    --strict, and no userfaultfd that handles kernel faults\n"
                   "137  a lazy page failed its checksum when the program asked for it",
    .example = "uffdlazy resume app.img\n"
               "uffdlazy resume app.img --stats --prefetch none\n"
               "uffdlazy resume app.img --incremental   # later checkpoints: changes only",
    .run = resume,
};

}  // namespace uffdlazy::cli
