#include "tools/snapshot_cli_common.h"

#include "core/snapshot/index_digest.h"
#include "core/snapshot/process_format.h"
#include "tools/remote/location.h"
#include "tools/remote/remote_snapshot.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sys/mman.h>

namespace uffdlazy::cli {

using snap::ReadError;

snap::ReadStatus open_snapshot(snap::SnapshotReader& reader, const char* location, bool whole,
                               const std::string& digest) {
  if (!remote::is_remote(location)) {
    snap::ReadStatus s = reader.open(location, /*native_page_size=*/false);
    if (!s.ok()) std::fprintf(stderr, "uffdlazy: %s: %s\n", location, read_status_text(s).c_str());
    return s;
  }
  remote::Location loc;
  std::string err;
  remote::ObjectClient client;
  if (!remote::parse_location(location, &loc, &err) || !client.init(loc, &err)) {
    std::fprintf(stderr, "uffdlazy: %s: %s\n", loc.text.empty() ? location : loc.text.c_str(), err.c_str());
    return snap::ReadStatus{snap::ReadError::kOpenFailed, EINVAL};
  }
  std::string pinned = loc.digest;
  if (!digest.empty()) {
    if (!pinned.empty() && pinned != digest) {
      std::fprintf(stderr, "uffdlazy: %s: --digest and the URL's #sha256= differ\n", loc.text.c_str());
      return snap::ReadStatus{snap::ReadError::kOpenFailed, EINVAL};
    }
    pinned = digest;
  }
  remote::FetchedObject object;
  bool fetched;
  if (whole) {
    remote::Progress progress("fetch " + loc.text, 0);
    fetched = remote::fetch_whole_object(client, &object, &err, &progress) &&
              remote::check_index_digest(object, pinned, &err);
  } else {
    fetched = remote::fetch_snapshot_metadata(client, pinned, &object, &err);
  }
  if (!fetched) {
    std::fprintf(stderr, "uffdlazy: %s: %s\n", loc.text.c_str(), err.c_str());
    const bool damage = err.rfind("index digest", 0) == 0;
    return damage ? snap::ReadStatus{snap::ReadError::kIndexChecksum, 0, 0, 0, "index digest"}
                  : snap::ReadStatus{snap::ReadError::kOpenFailed, EIO};
  }
  snap::ReadStatus s = reader.open_fd(object.fd, /*native_page_size=*/false);
  if (!s.ok()) std::fprintf(stderr, "uffdlazy: %s: %s\n", loc.text.c_str(), read_status_text(s).c_str());
  return s;
}

std::string recorded_digest_text(const snap::SnapshotReader& reader) {
  if (!snap::has_index_digest(reader.recorded_index_digest())) return "";
  char hex[65];
  snap::sha256_hex(reader.recorded_index_digest(), hex);
  return hex;
}

std::string read_status_text(const snap::ReadStatus& s) {
  LineWriter w;
  snap::describe(s, w);
  return std::string(w.data(), w.size());
}

bool is_damage(const snap::ReadStatus& s) {
  switch (s.error) {
    case ReadError::kTruncated:
    case ReadError::kHeaderChecksum:
    case ReadError::kIndexChecksum:
    case ReadError::kMalformed:
      return true;
    default:
      return false;
  }
}

std::string hex_bytes(const uint8_t* p, uint32_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (uint32_t i = 0; i < n; i++) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

const char* id_kind_name(snap::IdKind kind) {
  switch (kind) {
    case snap::IdKind::kNone: return "none";
    case snap::IdKind::kGnuBuildId: return "gnu-build-id";
    case snap::IdKind::kContentXxh3: return "content-xxh3";
  }
  return "unknown";
}

std::string id_text(snap::IdKind kind, const uint8_t* id, uint32_t n) {
  if (kind == snap::IdKind::kNone || n == 0) return "(none)";
  return hex_bytes(id, n) + " (" + id_kind_name(kind) + ")";
}

std::string prot_text(uint32_t prot) {
  std::string s = "---";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  return s;
}

std::string utc_time_text(uint64_t ns) {
  const time_t secs = time_t(ns / 1000000000u);
  struct tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unsigned(ns % 1000000000u / 1000000u));
  return buf;
}

std::string flags_text(uint64_t flags) {
  std::string s;
  auto add = [&](const char* name) { s += s.empty() ? name : std::string(",") + name; };
  if (flags & snap::kFlagNoAslr) add("no-aslr");
  if (flags & snap::kFlagPartial) add("partial");
  if (flags & snap::kFlagProcessImage) add("process-image");
  const uint64_t unknown = flags & ~(snap::kFlagNoAslr | snap::kFlagPartial | snap::kFlagProcessImage);
  if (unknown) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)unknown);
    add(buf);
  }
  return s.empty() ? "none" : s;
}

std::string site_text(const snap::SnapshotReader& r, uint64_t region) {
  snap::ModuleView m;
  if (!r.region_module(region, &m)) return "-";
  const char* base = std::strrchr(m.path, '/');
  base = base ? base + 1 : m.path;
  char off[32];
  std::snprintf(off, sizeof off, "+0x%llx", (unsigned long long)r.region(region).site_offset);
  return std::string(base) + off;
}

std::string json_string(const char* s, size_t n) {
  std::string out = "\"";
  for (size_t i = 0; i < n; i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

}  // namespace uffdlazy::cli
