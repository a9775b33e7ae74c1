// uffdlazy trace TRACE.bin --format csv|chrome [-o OUT]: exports a per-fault trace.
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/commands.h"
#include "tools/trace_file.h"

namespace uffdlazy::cli {

namespace {

using report::TraceData;

void write_csv(FILE* out, const TraceData& t) {
  std::fprintf(out, "timestamp_ns,offset_ns,latency_ns,tid,address,access,region,resolution,pages\n");
  for (const FaultRecord& r : t.records) {
    uint64_t offset = r.timestamp_ns >= t.header.start_ns ? r.timestamp_ns - t.header.start_ns : 0;
    std::fprintf(out, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,0x%" PRIx64 ",%s,", r.timestamp_ns, offset, r.latency_ns,
                 r.tid, r.address, r.write() ? "write" : "read");
    if (r.region_id != kNoRegion) std::fprintf(out, "%u", r.region_id);  // empty: no region
    std::fprintf(out, ",%s,%u\n", resolution_name(r.resolution), r.pages);
  }
}

// Chrome trace-event format: one complete ("X") event per fault on the faulting thread's track,
// times in microseconds from the start of the run.
void write_chrome(FILE* out, const TraceData& t) {
  const uint32_t pid = t.header.pid;
  std::fprintf(out, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"source\":\"uffdlazy\",\"records\":%" PRIu64
                    ",\"dropped\":%" PRIu64 "},\n\"traceEvents\":[\n",
               t.header.count, t.header.dropped);
  std::fprintf(out, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"uffdlazy faults (pid %u)\"}}",
               pid, pid);
  for (const FaultRecord& r : t.records) {
    uint64_t offset = r.timestamp_ns >= t.header.start_ns ? r.timestamp_ns - t.header.start_ns : 0;
    std::fprintf(out, ",\n{\"name\":\"%s\",\"cat\":\"fault\",\"ph\":\"X\",\"ts\":%" PRIu64 ".%03u,\"dur\":%" PRIu64
                      ".%03u,\"pid\":%u,\"tid\":%u,\"args\":{\"address\":\"0x%" PRIx64 "\",\"region\":",
                 resolution_name(r.resolution), offset / 1000, unsigned(offset % 1000), r.latency_ns / 1000,
                 unsigned(r.latency_ns % 1000), pid, r.tid, r.address);
    if (r.region_id == kNoRegion) std::fputs("null", out);
    else std::fprintf(out, "%u", r.region_id);
    std::fprintf(out, ",\"access\":\"%s\",\"pages\":%u}}", r.write() ? "write" : "read", r.pages);
  }
  std::fprintf(out, "\n]}\n");
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: uffdlazy trace TRACE.bin [--format csv|chrome] [-o OUT]\n"
               "  --format csv     one row per fault with a header row (default)\n"
               "  --format chrome  Chrome trace-event JSON for chrome://tracing or ui.perfetto.dev\n"
               "  -o OUT           write to OUT instead of stdout\n");
}

}  // namespace

int cmd_trace(int argc, char** argv) {
  const char* path = nullptr;
  const char* out_path = nullptr;
  std::string format = "csv";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if ((a == "--format" || a == "-f") && i + 1 < argc) {
      format = argv[++i];
    } else if (a.rfind("--format=", 0) == 0) {
      format = a.substr(9);
    } else if ((a == "-o" || a == "--output") && i + 1 < argc) {
      out_path = argv[++i];
    } else if (a[0] != '-' && !path) {
      path = argv[i];
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (!path || (format != "csv" && format != "chrome")) {
    if (path) std::fprintf(stderr, "uffdlazy trace: unknown format '%s' (csv or chrome)\n", format.c_str());
    usage(stderr);
    return 2;
  }
  TraceData t;
  std::string err;
  if (!report::load_trace(path, &t, &err)) {
    std::fprintf(stderr, "uffdlazy trace: %s\n", err.c_str());
    return 2;
  }
  FILE* out = stdout;
  if (out_path) {
    out = std::fopen(out_path, "w");
    if (!out) {
      std::fprintf(stderr, "uffdlazy trace: cannot write %s: %s\n", out_path, std::strerror(errno));
      return 2;
    }
  }
  if (format == "csv") write_csv(out, t);
  else write_chrome(out, t);
  bool ok = std::fflush(out) == 0 && !std::ferror(out);
  if (out != stdout) ok = std::fclose(out) == 0 && ok;
  if (!ok) {
    std::fprintf(stderr, "uffdlazy trace: writing the output failed\n");
    return 2;
  }
  if (t.header.dropped)
    std::fprintf(stderr, "uffdlazy trace: the trace kept the first %" PRIu64 " faults; %" PRIu64 " later ones were dropped\n",
                 t.header.count, t.header.dropped);
  return 0;
}

}  // namespace uffdlazy::cli
