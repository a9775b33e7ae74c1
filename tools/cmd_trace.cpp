// uffdlazy trace TRACE.bin --format csv|chrome [-o OUT]: exports a per-fault trace.
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/commands.h"
#include "tools/option_parser.h"
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

const OptionSpec kOptions[] = {
    {.name = "--format",
     .alias = "-f",
     .value = "csv|chrome",
     .help = "csv: one row per fault, with a header row; chrome: Chrome trace-event JSON, one event per fault "
             "on its thread's track (open it in ui.perfetto.dev or chrome://tracing)",
     .fallback = "csv",
     .complete = Complete::kWords,
     .words = "csv chrome"},
    {.name = "--output",
     .alias = "-o",
     .value = "OUT",
     .help = "write to OUT instead of stdout",
     .complete = Complete::kFile},
};

int trace(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(trace_verb, argc, argv, &args); rc != kParsed) return rc;
  const char* path = args.operands[0].c_str();
  const std::string format = args.has("--format") ? *args.value("--format") : "csv";
  const char* out_path = args.has("--output") ? args.value("--output")->c_str() : nullptr;
  if (format != "csv" && format != "chrome") {
    return usage_error(trace_verb, "unknown format '" + format + "' (csv or chrome)");
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

}  // namespace

const VerbSpec trace_verb = {
    .name = "trace",
    .summary = "export a per-fault trace as CSV or Chrome trace JSON",
    .synopsis = "TRACE [--format csv|chrome] [-o OUT]",
    .description =
        "Exports a per-fault trace (written by --trace or UFFDLAZY_TRACE): when each fault came, how long "
        "it waited, on which thread, at which address and region, and how it was resolved. A trace keeps "
        "the first UFFDLAZY_TRACE_LIMIT faults (default 1M); a line on stderr says how many later ones "
        "were dropped.",
    .options = kOptions,
    .operand = "TRACE",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kFile,
    .exit_status = "0    written\n"
                   "2    a usage error, a file that is not a trace, or OUT cannot be written",
    .example = "uffdlazy trace run.trace > faults.csv\n"
               "uffdlazy trace run.trace --format chrome -o faults.json",
    .run = trace,
};

}  // namespace uffdlazy::cli
