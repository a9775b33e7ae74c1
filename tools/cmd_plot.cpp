// uffdlazy plot FILE.json -o out.svg: the latency CDF per resolution kind and the faults over
// time of a fault report, drawn as a self-contained SVG.
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "tools/commands.h"
#include "tools/option_parser.h"
#include "tools/report_model.h"
#include "tools/svg_axis.h"
#include "tools/svg_writer.h"

namespace uffdlazy::cli {

namespace {

using report::Histogram;
using report::Report;
using svg::Anchor;
using svg::Document;
using svg::Scale;
using svg::Style;
using svg::TextStyle;

constexpr double kWidth = 1000, kHeight = 860;
constexpr double kLeft = 84, kRight = kWidth - 36;
const char* const kGrid = "#e4e4e4";
const char* const kMinorGrid = "#f2f2f2";
const char* const kAxis = "#555";

const char* kind_color(const std::string& kind) {
  if (kind == "snapshot_page") return "#1f77b4";
  if (kind == "zero") return "#2ca02c";
  if (kind == "duplicate") return "#9467bd";
  if (kind == "already_present") return "#ff7f0e";
  if (kind == "unmapped") return "#8c564b";
  if (kind == "error") return "#d62728";
  return "#7f7f7f";
}


std::string short_us(uint64_t ns) {
  // Three significant digits are plenty for a legend.
  double us = double(ns) / 1000.0;
  char b[32];
  if (us < 1) std::snprintf(b, sizeof b, "%.0f ns", double(ns));
  else if (us < 1000) std::snprintf(b, sizeof b, "%.3g \u00b5s", us);
  else if (us < 1e6) std::snprintf(b, sizeof b, "%.3g ms", us / 1000);
  else std::snprintf(b, sizeof b, "%.2f s", us / 1e6);
  return b;
}

std::string count_text(uint64_t n) {
  std::string digits = std::to_string(n), s;
  for (size_t i = 0; i < digits.size(); i++) {
    if (i && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

// Piecewise-linear CDF through the bucket bounds, in (µs, fraction); x clamped to [min, max].
std::vector<std::pair<double, double>> cdf_points(const Histogram& h) {
  std::vector<std::pair<double, double>> pts;
  if (h.count == 0) return pts;
  uint64_t cum = 0;
  auto x_of = [&](uint64_t ns) { return double(std::clamp(ns, h.min_ns, h.max_ns)) / 1000.0; };
  for (const auto& b : h.buckets) {
    pts.push_back({x_of(b.lower_ns), double(cum) / double(h.count)});
    cum += b.count;
    pts.push_back({x_of(b.upper_ns - 1), double(cum) / double(h.count)});
  }
  return pts;
}

void no_data(Document& d, double x0, double x1, double y0, double y1, const char* what) {
  d.text((x0 + x1) / 2, (y0 + y1) / 2, what, {14, Anchor::kMiddle, "#888"});
}

void frame(Document& d, double x0, double y0, double x1, double y1) {
  d.rect(x0, y0, x1 - x0, y1 - y0, {kAxis, 1});
}

// Fewer faults than this make no curve (one fault would be a vertical line from 0 to 100%, read as
// a threshold): they are drawn as points, one per fault (or per bucket of equal latencies).
constexpr uint64_t kCurveMinFaults = 20;
constexpr double kPointRadius = 5;

Style series_style(const std::string& name, bool all) {
  if (all) return {"#c4c4c4", 7};
  return {kind_color(name), 2};
}

// One series of the CDF panel, in a group of its own (<g id="cdf-KIND">, "cdf-all" for all faults): a curve, or points when
// there are too few faults for one. "all" is a wide band with a thin dark line at its centre.
void draw_series(Document& d, const std::string& name, const Histogram& h, const Scale& x, const Scale& y, bool all) {
  d.begin_group(all ? "cdf-all" : "cdf-" + name);
  if (!all && h.count < kCurveMinFaults) {
    uint64_t cum = 0;
    for (const auto& b : h.buckets) {
      if (!b.count) continue;
      cum += b.count;
      const uint64_t mid = std::clamp(b.lower_ns + (b.upper_ns - 1 - b.lower_ns) / 2, h.min_ns, h.max_ns);
      d.circle(x(double(mid) / 1000.0), y(double(cum) / double(h.count)), kPointRadius,
               {"#ffffff", 1.5, kind_color(name)});
    }
  } else {
    std::vector<std::pair<double, double>> pts;
    for (auto [vx, vy] : cdf_points(h)) pts.push_back({x(vx), y(vy)});
    d.polyline(pts, series_style(name, all));
    if (all) d.polyline(pts, {"#222", 1.2});
  }
  d.end_group();
}

void draw_cdf(Document& d, const Report& r, double top, double bottom) {
  d.begin_group("latency-cdf");
  d.text(kLeft, top - 14, "Fault latency distribution (CDF)", {15, Anchor::kStart, "#222", true});
  d.text(kRight, top - 14, "time from reading the fault to the thread being woken", {11, Anchor::kEnd, "#777"});

  std::vector<std::pair<std::string, const Histogram*>> series;
  series.push_back({"all faults", &r.latency});
  for (const auto& [name, h] : r.kinds)
    if (h.count) series.push_back({name, &h});

  if (r.latency.count == 0) {
    frame(d, kLeft, top, kRight, bottom);
    no_data(d, kLeft, kRight, top, bottom, "no faults recorded");
    d.end_group();
    return;
  }
  double lo_us = std::max(double(r.latency.min_ns), 1.0) / 1000.0;
  double hi_us = std::max(double(r.latency.max_ns), 1.0) / 1000.0;
  lo_us = std::pow(10, std::floor(std::log10(lo_us) + 1e-9));
  hi_us = std::pow(10, std::ceil(std::log10(hi_us) - 1e-9));
  if (hi_us <= lo_us) hi_us = lo_us * 10;
  Scale x{lo_us, hi_us, kLeft, kRight, true};
  Scale y{0, 1, bottom, top};

  // Grid and ticks.
  for (const auto& t : svg::log_time_ticks_us(lo_us, hi_us)) {
    double px = x(t.value);
    const bool decade = std::fabs(std::log10(t.value) - std::round(std::log10(t.value))) < 1e-9;
    d.line(px, top, px, bottom, {decade ? kGrid : kMinorGrid, 1});
    d.line(px, bottom, px, bottom + (t.label.empty() ? 3 : 6), {kAxis, 1});
    if (!t.label.empty()) d.text(px, bottom + 20, t.label, {decade ? 12.0 : 11.0, Anchor::kMiddle, decade ? "#333" : "#777"});
  }
  for (int p = 0; p <= 100; p += 10) {
    double py = y(p / 100.0);
    d.line(kLeft, py, kRight, py, {p % 20 ? kMinorGrid : kGrid, 1});
    if (p % 20 == 0) {
      d.line(kLeft - 6, py, kLeft, py, {kAxis, 1});
      d.text(kLeft - 10, py + 4, std::to_string(p) + "%", {12, Anchor::kEnd});
    }
  }
  for (double q : {0.5, 0.99}) {
    double py = y(q);
    d.line(kLeft, py, kRight, py, {"#999", 1, "none", "5,4"});
    // Left end: a rising CDF is still low there, so the label stays clear of the curves.
    d.text(kLeft + 6, q == 0.5 ? py - 4 : py + 13, q == 0.5 ? "p50" : "p99", {11, Anchor::kStart, "#777"});
  }
  frame(d, kLeft, top, kRight, bottom);
  d.text((kLeft + kRight) / 2, bottom + 42, "fault latency (log scale)", {13, Anchor::kMiddle, "#333"});
  d.text(kLeft - 54, (top + bottom) / 2, "faults at or below", {13, Anchor::kMiddle, "#333", false, -90});

  // "all faults" first, as a wide pale band, then the kinds on top of it, the most frequent first:
  // a kind that holds nearly every fault has the same curve as "all", and runs visibly inside the
  // band instead of being hidden under it; a rare kind is drawn over a frequent one.
  std::vector<size_t> order;
  for (size_t i = 1; i < series.size(); i++) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return series[a].second->count > series[b].second->count; });
  order.insert(order.begin(), 0);
  for (size_t i : order) draw_series(d, series[i].first, *series[i].second, x, y, i == 0);

  // Legend in the bottom-right corner, which a rising CDF leaves empty.
  const double row = 20, lw = 400, lh = row * double(series.size()) + 8;
  const double lx = kRight - lw - 6, ly = bottom - lh - 14;
  d.rect(lx - 8, ly - 6, lw, lh, {"#ccc", 1, "#ffffff", "", 0.92});
  for (size_t i = 0; i < series.size(); i++) {
    const Histogram& h = *series[i].second;
    double cy = ly + row * double(i) + 8;
    bool all = i == 0;
    if (!all && h.count < kCurveMinFaults) {
      d.circle(lx + 13, cy, kPointRadius, {"#ffffff", 1.5, kind_color(series[i].first)});
    } else {
      d.line(lx, cy, lx + 26, cy, series_style(series[i].first, all));
      if (all) d.line(lx, cy, lx + 26, cy, {"#222", 1.2});
    }
    d.text(lx + 34, cy + 4, series[i].first, {12, Anchor::kStart, "#222", all});
    char stats[160];
    std::snprintf(stats, sizeof stats, "n=%s   p50 %s   p99 %s", count_text(h.count).c_str(), short_us(h.p50_ns).c_str(),
                  short_us(h.p99_ns).c_str());
    d.text(lx + 150, cy + 4, stats, {12, Anchor::kStart, "#444"});
  }
  d.end_group();
}

void draw_timeline(Document& d, const Report& r, double top, double bottom) {
  d.begin_group("faults-over-time");
  const double interval_s = double(r.timeline_interval_ns) / 1e9;
  char title[128];
  std::snprintf(title, sizeof title, "Faults over time (per %s interval)",
                short_us(r.timeline_interval_ns).c_str());
  d.text(kLeft, top - 14, title, {15, Anchor::kStart, "#222", true});

  uint64_t peak = 0;
  for (uint64_t c : r.timeline_faults) peak = std::max(peak, c);
  if (r.timeline_faults.empty() || peak == 0 || r.timeline_interval_ns == 0) {
    frame(d, kLeft, top, kRight, bottom);
    no_data(d, kLeft, kRight, top, bottom, "no faults recorded");
    d.end_group();
    return;
  }
  // The x axis spans the run (faults often stop long before the program does).
  double span_s = double(r.timeline_faults.size()) * interval_s;
  if (r.end_ns > r.timeline_start_ns) span_s = std::max(span_s, double(r.end_ns - r.timeline_start_ns) / 1e9);
  const bool ms = span_s < 2;
  const double unit = ms ? 1000 : 1;

  std::vector<svg::Tick> xt, yt;
  double x_top = svg::nice_linear_ticks(span_s * unit, 10, &xt, "");
  double y_top = svg::nice_linear_ticks(double(peak), 5, &yt, "", 1);  // counts: whole steps
  Scale x{0, x_top, kLeft, kRight};
  Scale y{0, y_top, bottom, top};

  for (const auto& t : xt) {
    double px = x(t.value);
    d.line(px, top, px, bottom, {kGrid, 1});
    d.line(px, bottom, px, bottom + 6, {kAxis, 1});
    d.text(px, bottom + 20, t.label, {12, Anchor::kMiddle});
  }
  for (const auto& t : yt) {
    double py = y(t.value);
    d.line(kLeft, py, kRight, py, {kGrid, 1});
    d.line(kLeft - 6, py, kLeft, py, {kAxis, 1});
    d.text(kLeft - 10, py + 4, t.label, {12, Anchor::kEnd});
  }
  for (size_t i = 0; i < r.timeline_faults.size(); i++) {
    uint64_t c = r.timeline_faults[i];
    if (!c) continue;
    double x0 = x(double(i) * interval_s * unit), x1 = x(double(i + 1) * interval_s * unit);
    double w = std::max(x1 - x0 - (x1 - x0 > 4 ? 1 : 0), 1.5);
    d.rect(x0, y(double(c)), w, bottom - y(double(c)), {"none", 0, "#4c78a8"});
  }
  frame(d, kLeft, top, kRight, bottom);
  d.text((kLeft + kRight) / 2, bottom + 42, ms ? "time since start (ms)" : "time since start (s)",
         {13, Anchor::kMiddle, "#333"});
  d.text(kLeft - 54, (top + bottom) / 2, "faults per interval", {13, Anchor::kMiddle, "#333", false, -90});
  d.end_group();
}

std::string render(const Report& r) {
  Document d(kWidth, kHeight);
  d.comment("uffdlazy fault report plot");
  std::string prog = r.program.empty() ? "?" : r.program;
  if (auto slash = prog.rfind('/'); slash != std::string::npos && slash + 1 < prog.size()) prog = prog.substr(slash + 1);
  d.text(kLeft, 34, "uffdlazy: " + prog, {19, Anchor::kStart, "#111", true});
  char sub[256];
  int n = std::snprintf(sub, sizeof sub, "pid %" PRIu64 "  \u00b7  %s faults  \u00b7  %s pages  \u00b7  run %.3f s", r.pid,
                        count_text(r.total("faults")).c_str(), count_text(r.total("pages_served")).c_str(),
                        double(r.duration_ns) / 1e9);
  if (r.latency.count && n > 0 && size_t(n) < sizeof sub)
    std::snprintf(sub + n, sizeof sub - size_t(n), "  \u00b7  p50 %s  p99 %s  max %s", short_us(r.latency.p50_ns).c_str(),
                  short_us(r.latency.p99_ns).c_str(), short_us(r.latency.max_ns).c_str());
  d.text(kLeft, 56, sub, {12, Anchor::kStart, "#555"});
  draw_cdf(d, r, 104, 464);
  draw_timeline(d, r, 576, 790);
  return d.str();
}

const OptionSpec kOptions[] = {
    {.name = "--output",
     .alias = "-o",
     .value = "OUT.svg",
     .help = "where to write the SVG",
     .complete = Complete::kFile,
     .required = true},
};

int plot(int argc, char** argv) {
  ParsedArgs args;
  if (const int rc = parse_args(plot_verb, argc, argv, &args); rc != kParsed) return rc;
  const char* path = args.operands[0].c_str();
  const char* out_path = args.value("--output")->c_str();
  Report r;
  std::string err;
  if (!report::load_report(path, &r, &err)) {
    std::fprintf(stderr, "uffdlazy plot: %s\n", err.c_str());
    return 2;
  }
  std::string svg = render(r);
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  out << svg;
  out.close();
  if (!out) {
    std::fprintf(stderr, "uffdlazy plot: cannot write %s: %s\n", out_path, std::strerror(errno));
    return 2;
  }
  return 0;
}

}  // namespace

const VerbSpec plot_verb = {
    .name = "plot",
    .summary = "draw a fault report as an SVG",
    .synopsis = "FILE.json -o OUT.svg",
    .description =
        "Draws a fault report (written by --report or UFFDLAZY_REPORT) as a self-contained SVG: the "
        "distribution of fault latencies (a CDF per resolution kind, on a log scale; a kind with too few "
        "faults for a curve is drawn as points) and the faults over the run's time.",
    .options = kOptions,
    .operand = "FILE.json",
    .min_operands = 1,
    .max_operands = 1,
    .operand_complete = Complete::kFile,
    .exit_status = "0    written\n"
                   "2    a usage error, a file that is not a fault report this build reads, or OUT.svg "
                   "cannot be written",
    .example = "uffdlazy plot run.json -o run.svg",
    .run = plot,
};

}  // namespace uffdlazy::cli
