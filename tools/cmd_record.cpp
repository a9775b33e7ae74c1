// `uffdlazy record -o FILE|URL [--at MOMENT] [--no-aslr] [--keep-local] -- program args...`: runs a
// program under the shim and writes a snapshot of its registered memory at the chosen moment; to a
// URL by way of a local file that is then uploaded.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/launch_options.h"
#include "tools/remote/http_client.h"
#include "tools/remote/location.h"
#include "tools/remote/upload.h"

namespace uffdlazy::cli {

namespace {

const OptionSpec kOptions[] = {
    {.name = "--output",
     .alias = "-o",
     .value = "FILE|URL",
     .help = "where to write the snapshot; %p in the name stands for the pid (one snapshot per process "
             "of the run; a plain name holds the process with the most lazily paged memory). An "
             "s3://BUCKET/KEY or http(s):// URL: the snapshot is written locally first (crash-safe), then "
             "uploaded as uffdlazy push does, and the local copy removed",
     .complete = Complete::kFile,
     .variable = "UFFDLAZY_RECORD",
     .path = true,
     .required = true},
    {.name = "--keep-local",
     .help = "with an output URL: keep the local copy, as ./NAME (the URL's last part)"},
    {.name = "--at",
     .value = "MOMENT",
     .help = "when to take the snapshot: exit (after the program's exit handlers), signal=NAME (on that "
             "signal sent to the program, e.g. signal=USR2; not one the program handles) or after=SECONDS",
     .fallback = "exit",
     .complete = Complete::kWords,
     .words = "exit signal=USR2 after=",
     .variable = "UFFDLAZY_RECORD_AT"},
    {.name = "--no-aslr",
     .help = "run the program with address-space randomisation off, so that a restore (also with "
             "--no-aslr) matches regions by address as well",
     .variable = "UFFDLAZY_NO_ASLR",
     .no_aslr = true},
    {.name = "--min-size",
     .value = "SIZE",
     .help = "leave mappings smaller than SIZE alone (bytes, with an optional K, M or G suffix)",
     .fallback = "64K",
     .variable = "UFFDLAZY_MIN_SIZE"},
    {.name = "--stats",
     .help = "print the program's one-line account at exit (UFFDLAZY_STATS=all: every process's)",
     .variable = "UFFDLAZY_STATS"},
};

int record(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(record_verb, argc, argv, &args); rc != kParsed) return rc;
  Launch launch = launch_of(args);
  const bool keep_local = args.has("--keep-local");
  // A URL: the snapshot is written to a local file as always (crash-safe), then uploaded. Its
  // location and settings are checked before the program runs.
  const std::string output = launch.env.at("UFFDLAZY_RECORD");
  remote::Location loc;
  std::string err, local, scratch_dir;
  if (remote::is_remote(output)) {
    remote::ObjectClient probe;
    if (!remote::parse_location(output, &loc, &err) || !probe.init(loc, &err)) {
      std::fprintf(stderr, "uffdlazy record: %s: %s\n", output.c_str(), err.c_str());
      return 2;
    }
    if (output.find("%p") != std::string::npos) {
      std::fprintf(stderr, "uffdlazy record: %s: %%p names one snapshot per process, for local files only\n",
                   output.c_str());
      return 2;
    }
    const std::string name = loc.text.substr(loc.text.find_last_of('/') + 1);
    if (keep_local) {
      local = absolute_path(name.empty() ? std::string("snapshot") : name);
    } else {
      char tmpl[] = "/tmp/uffdlazy-record-XXXXXX";
      if (!mkdtemp(tmpl)) {
        std::fprintf(stderr, "uffdlazy record: cannot make a temporary directory: %s\n", std::strerror(errno));
        return 2;
      }
      scratch_dir = tmpl;
      local = scratch_dir + "/" + (name.empty() ? std::string("snapshot") : name);
    }
    launch.env["UFFDLAZY_RECORD"] = local;
  } else if (keep_local) {
    return usage_error(record_verb, "--keep-local is for an output URL (the snapshot of a FILE stays local)");
  }
  RunOutcome run;
  const int rc = spawn_under_shim(launch, "record", &run);
  auto forget_scratch = [&] {
    if (!scratch_dir.empty()) rmdir(scratch_dir.c_str());
  };
  if (rc) {
    forget_scratch();
    return rc;
  }
  if (!run.captures_ok) {
    // The shim said why (a failed capture, or the moment never came).
    std::fprintf(stderr, "uffdlazy record: no snapshot was written to %s\n", output.c_str());
    forget_scratch();
    const int program = pass_on_status(run.wait_status);
    return program ? program : 4;
  }
  if (!local.empty()) {
    remote::UploadOptions options;
    remote::UploadResult up;
    if (remote::upload_file(local, loc, options, &up, &err)) {
      std::fprintf(stderr, "uffdlazy record: %s: the upload failed: %s; the snapshot is in %s\n", loc.text.c_str(),
                   err.c_str(), local.c_str());
      const int program = pass_on_status(run.wait_status);
      return program ? program : 4;
    }
    std::fprintf(stderr, "uffdlazy record: %s: uploaded, %llu bytes, verified (%s), index digest sha256=%s%s%s\n",
                 loc.text.c_str(), (unsigned long long)up.bytes, up.checked.c_str(), up.digest.c_str(),
                 keep_local ? "; kept as " : "", keep_local ? local.c_str() : "");
    if (!keep_local) {
      unlink(local.c_str());
      forget_scratch();
    }
  }
  return pass_on_status(run.wait_status);
}

}  // namespace

const VerbSpec record_verb = {
    .name = "record",
    .summary = "run a program and write a snapshot of its memory",
    .synopsis = "-o FILE|URL [options] [--] program [args...]",
    .description =
        "Runs program under the shim and writes a snapshot of its lazily paged anonymous memory to FILE at "
        "the chosen moment: a consistent point-in-time image taken by a child cloned at that instant, "
        "written to a temporary name and renamed once complete. uffdlazy restore gives a later run of the "
        "same program that memory back, page by page as it touches it.\n\n"
        "uffdlazy waits for the program and passes on the signals sent to it.",
    .options = kOptions,
    .takes_program = true,
    .exit_status = "N    the program's own status (a program killed by a signal: the same signal)\n"
                   "2    a bad option or variable, or the shim could not start the recording\n"
                   "3    userfaultfd cannot be used\n"
                   "4    the program succeeded but no snapshot was written (the capture failed, or its "
                   "moment never came; a line says which), or its upload failed (the local copy is kept, "
                   "and named)\n"
                   "127  the program was not found",
    .example = "uffdlazy record -o app.snap -- ./app --warm-up\n"
               "uffdlazy record -o app.snap --at signal=USR2 -- ./server   # kill -USR2 PID",
    .run = record,
};

}  // namespace uffdlazy::cli
