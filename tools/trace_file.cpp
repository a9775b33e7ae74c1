#include "tools/trace_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace uffdlazy::report {

bool load_trace(const std::string& path, TraceData* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!parse_trace(bytes, out, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

bool parse_trace(std::string_view bytes, TraceData* out, std::string* error) {
  auto bad = [&](const std::string& why) {
    *error = why;
    return false;
  };
  TraceFileHeader h;
  if (bytes.size() < sizeof h) return bad("too short for a trace header (not a uffdlazy trace?)");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, "UFFDTRC1", 8) != 0) return bad("not a uffdlazy trace (bad magic)");
  if (h.version != TraceFileHeader::kVersion)
    return bad("unsupported trace version " + std::to_string(h.version) + " (this build reads version " +
               std::to_string(TraceFileHeader::kVersion) + ")");
  if (h.header_size < sizeof h || h.header_size > bytes.size()) return bad("bad header size");
  if (h.record_size != sizeof(FaultRecord))
    return bad("record size " + std::to_string(h.record_size) + ", expected " + std::to_string(sizeof(FaultRecord)));
  uint64_t body = bytes.size() - h.header_size;
  if (h.count > body / sizeof(FaultRecord))
    return bad("truncated: header says " + std::to_string(h.count) + " records, file holds " +
               std::to_string(body / sizeof(FaultRecord)));
  out->header = h;
  out->records.resize(size_t(h.count));
  if (h.count) std::memcpy(out->records.data(), bytes.data() + h.header_size, size_t(h.count) * sizeof(FaultRecord));
  return true;
}

}  // namespace uffdlazy::report
