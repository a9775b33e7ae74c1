#include "core/latency/json_report_writer.h"

#include <fcntl.h>

#include "core/base/raw_syscall.h"
#include "core/latency/json_out.h"
#include "core/base/mono_clock.h"
#include "uffdlazy/version.h"

namespace uffdlazy {

namespace {

void write_histogram(JsonOut& j, const LatencyHistogram& h) {
  j.begin_object();
  j.field("count", h.count());
  j.field("sum_ns", h.sum());
  j.field("mean_ns", h.mean());
  j.field("min_ns", h.min());
  j.field("p50_ns", h.value_at_percentile_milli(50000));
  j.field("p90_ns", h.value_at_percentile_milli(90000));
  j.field("p99_ns", h.value_at_percentile_milli(99000));
  j.field("p999_ns", h.value_at_percentile_milli(99900));
  j.field("max_ns", h.max());
  // Only non-empty buckets: [lower, upper) in ns and the count, enough to draw a CDF.
  j.key("buckets").begin_array();
  if (h.count()) {
    for (size_t i = 0; i < LatencyHistogram::kBuckets; i++) {
      uint32_t c = h.bucket_count(i);
      if (!c) continue;
      j.begin_array().u64(LatencyHistogram::bucket_lower(i)).u64(LatencyHistogram::bucket_upper(i)).u64(c).end_array();
    }
  }
  j.end_array();
  j.end_object();
}

void write_region(JsonOut& j, const RegionSlots& slots, uint32_t id, const LatencyHistogram& h) {
  j.begin_object();
  const RegionInfo* info = slots.info(id);
  j.key("id").u64(id);
  if (info) {
    j.field("start", info->start).field("length", info->length).field("label", info->label);
  } else {
    j.key("start").null().key("length").null().field("label", "");
  }
  j.key("latency");
  write_histogram(j, h);
  j.end_object();
}

}  // namespace

int write_json_report_fd(int fd, const FaultStats& stats, const ReportMeta& meta) {
  const uint64_t start = meta.start_ns ? meta.start_ns : stats.start_ns();
  const uint64_t end = meta.end_ns ? meta.end_ns : mono_now_ns();
  const uint64_t overhead =
      meta.measurement_overhead_ns == UINT64_MAX ? measure_clock_overhead_ns() : meta.measurement_overhead_ns;
  const auto& t = stats.totals();
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };

  JsonOut j(fd);
  j.begin_object();
  j.field("schema", kReportSchema).field("version", kReportVersion);

  j.key("metadata").begin_object();
  j.field("pid", meta.pid);
  j.field("program", meta.program ? meta.program : "");
  j.field("uffdlazy_version", UFFDLAZY_VERSION).field("uffdlazy_commit", UFFDLAZY_GIT_COMMIT);
  j.field("start_ns", start).field("end_ns", end).field("duration_ns", end > start ? end - start : 0);
  j.field("end_realtime_ns", realtime_now_ns());
  j.field("page_size", meta.page_size);
  j.field("measurement_overhead_ns", overhead);
  j.key("histogram").begin_object();
  j.field("unit", "ns").field("sub_buckets", LatencyHistogram::kSub);
  j.key("max_relative_error").raw_number("0.015625");
  j.field("max_tracked_ns", LatencyHistogram::kMaxTracked);
  j.end_object();
  j.end_object();

  j.key("totals").begin_object();
  j.field("faults", get(t.faults));
  j.field("pages_served", get(t.pages_served));
  j.field("zero_pages", get(t.zero_pages));
  j.field("snapshot_pages", get(t.snapshot_pages));
  j.field("duplicates", get(t.duplicates));
  j.field("already_present", get(t.already_present));
  j.field("unmapped", get(t.unmapped));
  j.field("errors", get(t.errors));
  j.field("regions_registered", get(t.regions_registered));
  j.field("readahead_pages", get(t.readahead_pages));
  j.field("prefetched_pages", get(t.prefetched_pages));
  j.end_object();

  j.key("latency");
  write_histogram(j, stats.overall());

  j.key("kinds").begin_object();
  for (size_t k = 0; k < kResolutionCount; k++) {
    j.key(resolution_name(Resolution(k)));
    write_histogram(j, stats.by_kind(Resolution(k)));
  }
  j.end_object();

  const RegionSlots& slots = stats.regions();
  j.key("regions").begin_array();
  for (uint32_t s = 0; s < slots.used() && s < RegionSlots::kTracked; s++)
    write_region(j, slots, slots.slot_region(s), stats.by_region_slot(s));
  j.end_array();
  j.key("other_regions");
  write_histogram(j, stats.by_region_slot(RegionSlots::kOther));

  j.key("events").begin_object();
  for (size_t e = 0; e < kEventKindCount; e++) {
    j.key(event_name(EventKind(e)));
    write_histogram(j, stats.event(EventKind(e)));
  }
  j.end_object();

  const FaultTimeline& tl = stats.timeline();
  j.key("timeline").begin_object();
  j.field("start_ns", tl.origin_ns()).field("interval_ns", tl.interval_ns());
  j.key("faults").begin_array();
  for (size_t i = 0, n = tl.used(); i < n; i++) j.u64(tl.count(i));
  j.end_array();
  j.end_object();

  if (meta.trace) {
    j.key("trace").begin_object();
    j.field("path", meta.trace_path ? meta.trace_path : "");
    j.field("records", meta.trace->count()).field("dropped", meta.trace->dropped());
    j.field("capacity", meta.trace->capacity());
    j.end_object();
  }

  j.end_object();
  return j.finish();
}

int write_json_report(const char* path, const FaultStats& stats, const ReportMeta& meta) {
  long fd = sys::openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return int(fd);
  int rc = write_json_report_fd(int(fd), stats, meta);
  long c = sys::close(int(fd));
  return rc ? rc : (c < 0 ? int(c) : 0);
}

}  // namespace uffdlazy
