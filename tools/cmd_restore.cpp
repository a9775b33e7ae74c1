// `uffdlazy restore FILE [options] -- program args...`: runs a program whose matching anonymous
// regions come back from the snapshot lazily, page by page on first touch. The same as
// LD_PRELOAD=libuffdlazy.so UFFDLAZY_SNAPSHOT=FILE program args...
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include <sys/wait.h>

#include "core/snapshot/snapshot_reader.h"
#include "tools/commands.h"
#include "tools/launch_options.h"
#include "tools/part_paths.h"
#include "tools/remote/http_client.h"
#include "tools/remote/location.h"
#include "tools/remote/remote_snapshot.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--no-aslr",
     .help = "run with address-space randomisation off and match regions by address too (for snapshots "
             "recorded with --no-aslr)",
     .variable = "UFFDLAZY_NO_ASLR",
     .no_aslr = true},
    {.name = "--verify",
     .value = "page|none",
     .help = "check each page's checksum before it is served (the header and index are always checked)",
     .fallback = "page",
     .complete = Complete::kWords,
     .words = "page none",
     .variable = "UFFDLAZY_VERIFY"},
    {.name = "--readahead",
     .value = "PAGES",
     .help = "most owed pages one fault brings in, adaptively (1 to 4096; 1: one page per fault)",
     .fallback = "1024",
     .variable = "UFFDLAZY_READAHEAD"},
    {.name = "--prefetch",
     .value = "MODE",
     .help = "what the monitor installs while no fault waits: none (on demand only), ws (the working set "
             "of --ws, then stop) or all (the working set, then everything else)",
     .fallback = "all",
     .complete = Complete::kWords,
     .words = "none ws all",
     .variable = "UFFDLAZY_PREFETCH"},
    {.name = "--ws",
     .value = "FILE",
     .help = "replay this working set first: its pages are in place before the program reads them "
             "(recorded with --ws-record from the same snapshot)",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_WS",
     .path = true},
    {.name = "--ws-record",
     .value = "FILE",
     .help = "write the pages this run touches, in first-touch order (turns readahead and prefetch off, "
             "so that every touch is seen)",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_WS_RECORD",
     .path = true},
    {.name = "--min-size",
     .value = "SIZE",
     .help = "leave mappings smaller than SIZE alone (they are not restored)",
     .fallback = "64K",
     .variable = "UFFDLAZY_MIN_SIZE"},
    {.name = "--report",
     .value = "FILE",
     .help = "write a JSON fault report at exit; %p in the name stands for the pid",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_REPORT",
     .path = true},
    {.name = "--stats",
     .help = "at exit, print the restore account (regions matched, pages served) and the program's one-line "
             "fault account (UFFDLAZY_STATS=all: every process's)",
     .variable = "UFFDLAZY_STATS"},
};

// The object at `url` in a new temporary file (*path). False with *err.
bool fetch_to_temporary(const std::string& url, std::string* path, std::string* err) {
  remote::Location loc;
  remote::ObjectClient client;
  if (!remote::parse_location(url, &loc, err) || !client.init(loc, err)) return false;
  remote::FetchedObject obj;
  if (!remote::fetch_whole_object(client, &obj, err, nullptr)) return false;
  const char* tmp = getenv("TMPDIR");
  std::string name = std::string(tmp && *tmp ? tmp : "/tmp") + "/uffdlazy-ws.XXXXXX";
  const int fd = mkstemp(name.data());
  if (fd < 0) {
    *err = std::string("cannot make a temporary file: ") + std::strerror(errno);
    return false;
  }
  std::vector<char> buf(1 << 20);
  bool ok = true;
  for (uint64_t at = 0; ok && at < obj.size;) {
    const ssize_t n = pread(obj.fd, buf.data(), std::min<uint64_t>(buf.size(), obj.size - at), off_t(at));
    ok = n > 0 && write(fd, buf.data(), size_t(n)) == n;
    at += n > 0 ? uint64_t(n) : 0;
  }
  close(fd);
  if (!ok) {
    unlink(name.c_str());
    *err = "cannot write the working set to a temporary file";
    return false;
  }
  *path = name;
  return true;
}

int restore(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(restore_verb, argc, argv, &args); rc != kParsed) return rc;
  const std::string& snapshot = args.operands[0];
  Launch launch = launch_of(args);
  if (remote::is_remote(snapshot)) {
    // A remote snapshot: the shim starts uffdlazy-fetch (docs/remote.md); a malformed location
    // is refused here.
    remote::Location loc;
    std::string err;
    if (!remote::parse_location(snapshot, &loc, &err)) {
      std::fprintf(stderr, "uffdlazy: %s: %s\n", snapshot.c_str(), err.c_str());
      return 2;
    }
    const PartPath fetcher = find_fetcher();
    if (fetcher.path.empty()) {
      std::fprintf(stderr, "uffdlazy restore: %s\n", fetcher.problem.c_str());
      return 2;
    }
    launch.env["UFFDLAZY_FETCHER"] = fetcher.path;
    launch.env["UFFDLAZY_SNAPSHOT"] = snapshot;
  } else {
    launch.env["UFFDLAZY_SNAPSHOT"] = absolute_path(snapshot);
  }
  // A working set at a URL is small: it is fetched whole into a temporary file first, which the
  // shim reads at start (and which goes when the program has ended).
  std::string ws_copy;
  if (auto ws = launch.env.find("UFFDLAZY_WS"); ws != launch.env.end() && remote::is_remote(ws->second)) {
    std::string err;
    if (!fetch_to_temporary(ws->second, &ws_copy, &err)) {
      std::fprintf(stderr, "uffdlazy: %s: %s\n", ws->second.c_str(), err.c_str());
      return 2;
    }
    ws->second = ws_copy;
  }
  RunOutcome run;
  const int spawned = spawn_under_shim(launch, "restore", &run);
  if (!ws_copy.empty()) unlink(ws_copy.c_str());
  if (spawned) return spawned;
  const int program = pass_on_status(run.wait_status);
  if (!run.restored && WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) != 2) {
    // Status 2 is the shim refusing the snapshot before the program ran; it said why.
    snap::SnapshotReader reader;
    const bool readable = !remote::is_remote(snapshot) && reader.open(snapshot.c_str(), false).ok();
    std::fprintf(stderr, "uffdlazy restore: %s: no program of this run is the one it was recorded from%s%s%s\n",
                 snapshot.c_str(), readable ? " (" : "", readable ? reader.exe_path() : "", readable ? ")" : "");
    return 2;
  }
  return program;
}

}  // namespace

const VerbSpec restore_verb = {
    .name = "restore",
    .summary = "run a program with its memory restored lazily from a snapshot",
    .synopsis = "FILE [options] [--] program [args...]",
    .description =
        "Runs program with its anonymous regions restored lazily from the snapshot FILE (uffdlazy record): "
        "a page is copied from the file the first time the program touches it, after its checksum is "
        "checked. A region is restored when the program maps it from the same call site, as the same Nth "
        "mapping of that site, with the same length, protection and flags (and, with --no-aslr, at the same "
        "address). The program starts again from main: restore gives memory back, not a process (for that, "
        "see checkpoint and resume).",
    .options = kOptions,
    .operand = "FILE",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kFile,
    .takes_program = true,
    .exit_status = "N    the program's own status (a program killed by a signal: the same signal)\n"
                   "2    a bad option or snapshot (one line names the file and the problem), or no "
                   "process of the run is the program the snapshot was recorded from\n"
                   "3    userfaultfd cannot be used\n"
                   "127  the program was not found\n"
                   "137  a snapshot page failed its checksum, or the monitor could not go on while "
                   "pages were still owed (the process is killed rather than read wrong data)",
    .example = "uffdlazy restore app.snap --stats -- ./app\n"
               "uffdlazy restore app.snap --ws-record app.ws -- ./app   # what a run touches\n"
               "uffdlazy restore app.snap --ws app.ws --prefetch ws -- ./app",
    .run = restore,
};

}  // namespace uffdlazy::cli
