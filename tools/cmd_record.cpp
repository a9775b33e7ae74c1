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

void usage(FILE* out) {
  std::fprintf(out,
               "usage: uffdlazy record -o FILE|URL [options] -- program [args...]\n"
               "\n"
               "Runs program under uffdlazy and writes a snapshot of its anonymous memory to FILE\n"
               "(a consistent point-in-time image taken by a forked child; see FORMAT.md).\n"
               "\n"
               "options:\n"
               "  -o, --output FILE     where to write the snapshot (required); an s3://BUCKET/KEY or\n"
               "                        http(s):// URL: written locally first (crash-safe), then\n"
               "                        uploaded as `uffdlazy push` does, and the local copy removed\n"
               "  --keep-local          with a URL: keep the local copy, as ./NAME (the URL's last part)\n"
               "  --at MOMENT           exit (default), signal=NAME (e.g. signal=USR2) or after=SECONDS\n"
               "  --no-aslr             run with address-space randomisation off, so a restore\n"
               "                        (also with --no-aslr) can match regions by address\n"
               "  --min-size SIZE       leave mappings smaller than SIZE alone (default 64K)\n"
               "  --stats               print the one-line account at exit\n"
               "\n"
               "Exit status: the program's; 4 if it succeeded but no snapshot was written (the\n"
               "capture failed or its moment never came, or its upload failed: the local copy is then\n"
               "kept, and named). A name with %%p gets one snapshot per\n"
               "process of the run; a plain name holds the process with the most lazily paged memory.\n");
}

}  // namespace

int cmd_record(int argc, char** argv) {
  static constexpr const char* kKeepLocal = "keep-local";  // a marker in launch.env, never exported
  static const std::vector<LaunchOption> kOptions = {
      {"--output", "-o", "UFFDLAZY_RECORD", true, true},
      {"--at", nullptr, "UFFDLAZY_RECORD_AT", true},
      {"--no-aslr", nullptr, "UFFDLAZY_NO_ASLR", false, false, true},
      {"--min-size", nullptr, "UFFDLAZY_MIN_SIZE", true},
      {"--stats", nullptr, "UFFDLAZY_STATS", false},
      {"--keep-local", nullptr, kKeepLocal, false},
  };
  Launch launch;
  std::vector<std::string> none;
  bool done;
  int rc = parse_launch("record", argc, argv, kOptions, 0, usage, &launch, &none, &done);
  if (done) return rc;
  // --keep-local is the command's own, not a setting of the shim's.
  const bool keep_local = launch.env.erase(kKeepLocal) > 0;
  if (!launch.env.count("UFFDLAZY_RECORD")) {
    std::fprintf(stderr, "uffdlazy record: no output file (-o FILE)\n");
    return 2;
  }
  // A URL: the snapshot is written to a local file as always (crash-safe), then uploaded. Its
  // location and settings are checked before the program runs.
  const std::string output = launch.env["UFFDLAZY_RECORD"];
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
    std::fprintf(stderr, "uffdlazy record: --keep-local is for an output URL (the snapshot of a FILE stays local)\n");
    return 2;
  }
  RunOutcome run;
  rc = spawn_under_shim(launch, "record", &run);
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

}  // namespace uffdlazy::cli
