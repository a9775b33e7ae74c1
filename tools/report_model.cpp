#include "tools/report_model.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tools/report_json.h"

namespace uffdlazy::report {

namespace {

constexpr const char* kSchema = "uffdlazy-report";
constexpr uint64_t kVersion = 1;

// Field access that remembers the first problem, so loading reads straight through.
class Reader {
 public:
  std::string error;

  const JsonValue* member(const JsonValue& obj, const char* key, const std::string& where) {
    const JsonValue* v = obj.find(key);
    if (!v) problem(where + "." + key + " is missing");
    return v;
  }
  uint64_t u64(const JsonValue& obj, const char* key, const std::string& where) {
    const JsonValue* v = member(obj, key, where);
    if (!v) return 0;
    if (!v->is_number() || !v->is_uint) problem(where + "." + key + " is not a non-negative integer");
    return v->uint;
  }
  std::string str(const JsonValue& obj, const char* key, const std::string& where) {
    const JsonValue* v = member(obj, key, where);
    if (!v) return {};
    if (!v->is_string()) problem(where + "." + key + " is not a string");
    return v->string;
  }
  const JsonValue* object(const JsonValue& obj, const char* key, const std::string& where) {
    const JsonValue* v = member(obj, key, where);
    if (v && !v->is_object()) {
      problem(where + "." + key + " is not an object");
      return nullptr;
    }
    return v;
  }
  const JsonValue* array(const JsonValue& obj, const char* key, const std::string& where) {
    const JsonValue* v = member(obj, key, where);
    if (v && !v->is_array()) {
      problem(where + "." + key + " is not an array");
      return nullptr;
    }
    return v;
  }

  Histogram histogram(const JsonValue* v, const std::string& where) {
    Histogram h;
    if (!v) return h;
    if (!v->is_object()) {
      problem(where + " is not an object");
      return h;
    }
    h.count = u64(*v, "count", where);
    h.sum_ns = u64(*v, "sum_ns", where);
    h.mean_ns = u64(*v, "mean_ns", where);
    h.min_ns = u64(*v, "min_ns", where);
    h.p50_ns = u64(*v, "p50_ns", where);
    h.p90_ns = u64(*v, "p90_ns", where);
    h.p99_ns = u64(*v, "p99_ns", where);
    h.p999_ns = u64(*v, "p999_ns", where);
    h.max_ns = u64(*v, "max_ns", where);
    if (const JsonValue* b = array(*v, "buckets", where)) {
      for (const auto& item : b->items) {
        if (!item.is_array() || item.items.size() != 3 || !item.items[0].is_uint || !item.items[1].is_uint ||
            !item.items[2].is_uint) {
          problem(where + ".buckets has an entry that is not [lower, upper, count]");
          break;
        }
        h.buckets.push_back({item.items[0].uint, item.items[1].uint, item.items[2].uint});
      }
    }
    return h;
  }

  void problem(const std::string& what) {
    if (error.empty()) error = what;
  }
};

}  // namespace

uint64_t Report::total(const std::string& name) const {
  for (const auto& [k, v] : totals)
    if (k == name) return v;
  return 0;
}

bool parse_report(const std::string& text, Report* out, std::string* error) {
  std::string jerr;
  auto doc = parse_json(text, &jerr);
  if (!doc) {
    *error = "not valid JSON: " + jerr;
    return false;
  }
  if (!doc->is_object()) {
    *error = "not a uffdlazy report: the document is not a JSON object";
    return false;
  }
  const JsonValue* schema = doc->find("schema");
  if (!schema || !schema->is_string() || schema->string != kSchema) {
    *error = std::string("not a uffdlazy report: schema is ") +
             (schema && schema->is_string() ? "'" + schema->string + "'" : std::string("missing")) + ", expected '" +
             kSchema + "'";
    return false;
  }
  const JsonValue* version = doc->find("version");
  if (!version || !version->is_uint || version->uint != kVersion) {
    *error = "unsupported report version " +
             (version && version->is_uint ? std::to_string(version->uint) : std::string("(missing)")) +
             " (this build reads version " + std::to_string(kVersion) + ")";
    return false;
  }

  Reader r;
  Report rep;
  rep.version = version->uint;
  if (const JsonValue* m = r.object(*doc, "metadata", "report")) {
    rep.pid = r.u64(*m, "pid", "metadata");
    rep.program = r.str(*m, "program", "metadata");
    rep.start_ns = r.u64(*m, "start_ns", "metadata");
    rep.end_ns = r.u64(*m, "end_ns", "metadata");
    rep.duration_ns = r.u64(*m, "duration_ns", "metadata");
    rep.page_size = r.u64(*m, "page_size", "metadata");
    rep.overhead_ns = r.u64(*m, "measurement_overhead_ns", "metadata");
    // Reports from before the version was recorded have neither member.
    const JsonValue* version = m->find("uffdlazy_version");
    const JsonValue* commit = m->find("uffdlazy_commit");
    if (version && version->is_string()) {
      rep.writer = version->string;
      if (commit && commit->is_string() && !commit->string.empty()) rep.writer += " (" + commit->string + ")";
    }
  }
  if (const JsonValue* t = r.object(*doc, "totals", "report")) {
    for (const auto& [k, v] : t->members) {
      if (!v.is_uint) r.problem("totals." + k + " is not a non-negative integer");
      rep.totals.emplace_back(k, v.uint);
    }
  }
  rep.latency = r.histogram(r.member(*doc, "latency", "report"), "latency");
  if (const JsonValue* k = r.object(*doc, "kinds", "report"))
    for (const auto& [name, v] : k->members) rep.kinds.emplace_back(name, r.histogram(&v, "kinds." + name));
  if (const JsonValue* regs = r.array(*doc, "regions", "report")) {
    for (size_t i = 0; i < regs->items.size(); i++) {
      const JsonValue& item = regs->items[i];
      std::string where = "regions[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        r.problem(where + " is not an object");
        break;
      }
      RegionEntry e;
      e.id = r.u64(item, "id", where);
      const JsonValue* start = item.find("start");
      e.described = start && start->is_uint;
      if (e.described) {
        e.start = start->uint;
        e.length = r.u64(item, "length", where);
      }
      if (const JsonValue* l = item.find("label"); l && l->is_string()) e.label = l->string;
      e.latency = r.histogram(r.member(item, "latency", where), where + ".latency");
      rep.regions.push_back(std::move(e));
    }
  }
  rep.other_regions = r.histogram(r.member(*doc, "other_regions", "report"), "other_regions");
  if (const JsonValue* ev = r.object(*doc, "events", "report"))
    for (const auto& [name, v] : ev->members) rep.events.emplace_back(name, r.histogram(&v, "events." + name));
  if (const JsonValue* tl = r.object(*doc, "timeline", "report")) {
    rep.timeline_start_ns = r.u64(*tl, "start_ns", "timeline");
    rep.timeline_interval_ns = r.u64(*tl, "interval_ns", "timeline");
    if (const JsonValue* f = r.array(*tl, "faults", "timeline")) {
      for (const auto& c : f->items) {
        if (!c.is_uint) {
          r.problem("timeline.faults has a value that is not a count");
          break;
        }
        rep.timeline_faults.push_back(c.uint);
      }
    }
  }
  if (const JsonValue* tr = doc->find("trace"); tr && tr->is_object()) {
    Report::Trace t;
    if (const JsonValue* p = tr->find("path"); p && p->is_string()) t.path = p->string;
    t.records = r.u64(*tr, "records", "trace");
    t.dropped = r.u64(*tr, "dropped", "trace");
    t.capacity = r.u64(*tr, "capacity", "trace");
    rep.trace = t;
  }
  if (!r.error.empty()) {
    *error = "malformed report: " + r.error;
    return false;
  }
  *out = std::move(rep);
  return true;
}

bool load_report(const std::string& path, Report* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!parse_report(ss.str(), out, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

}  // namespace uffdlazy::report
