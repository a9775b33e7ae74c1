#include "tools/inspect_process.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/snapshot_cli_common.h"

namespace uffdlazy::cli {

namespace {

const char* role_name(uint32_t role) {
  switch (snap::ThreadRole(role)) {
    case snap::ThreadRole::kLeader: return "main";
    case snap::ThreadRole::kApp: return "thread";
    case snap::ThreadRole::kMonitor: return "shim monitor";
    case snap::ThreadRole::kCapture: return "shim checkpoint";
  }
  return "?";
}

const char* kind_name(uint32_t kind) {
  switch (snap::MappingKind(kind)) {
    case snap::MappingKind::kAnonymous: return "anonymous";
    case snap::MappingKind::kStack: return "stack";
    case snap::MappingKind::kFilePrivate: return "file (private)";
    case snap::MappingKind::kFileShared: return "file (shared)";
    case snap::MappingKind::kVdso: return "vdso";
    case snap::MappingKind::kVsyscall: return "vsyscall";
    case snap::MappingKind::kShared: return "shared memory";
  }
  return "?";
}

const char* object_kind(uint32_t kind) {
  switch (snap::ObjectKind(kind)) {
    case snap::ObjectKind::kPipe: return "pipe";
    case snap::ObjectKind::kUnixSocket: return "unix socket";
    case snap::ObjectKind::kInetSocket: return "ip socket";
    case snap::ObjectKind::kEventfd: return "eventfd";
    case snap::ObjectKind::kEpoll: return "epoll";
    case snap::ObjectKind::kSignalfd: return "signalfd";
    case snap::ObjectKind::kTimerfd: return "timerfd";
    case snap::ObjectKind::kInotify: return "inotify";
    case snap::ObjectKind::kDeletedFile: return "deleted file";
    case snap::ObjectKind::kMemfd: return "memfd";
    case snap::ObjectKind::kSharedMemory: return "shared memory";
    case snap::ObjectKind::kPosixTimer: return "posix timer";
    case snap::ObjectKind::kDeletedCwd: return "deleted cwd";
    case snap::ObjectKind::kZombieChild: return "zombie child";
    case snap::ObjectKind::kChild: return "child";
  }
  return "?";
}

// A socket address (its raw bytes) or path as text.
std::string object_name(const snap::ProcessImage& image, const snap::ObjectRecord& o) {
  const char* p = image.object_string(o.path);
  if (o.kind == uint32_t(snap::ObjectKind::kUnixSocket)) {
    if (o.path.length <= 2) return "";
    return p[2] ? std::string(p + 2) : "@" + std::string(p + 3, o.path.length - 3);
  }
  if (o.kind == uint32_t(snap::ObjectKind::kInetSocket)) return o.path.length ? "(bound)" : "";
  if (o.kind == uint32_t(snap::ObjectKind::kChild)) return "pid " + std::to_string(o.zombie.pid) + " (its own image)";
  if (o.kind == uint32_t(snap::ObjectKind::kZombieChild)) {
    return "pid " + std::to_string(o.zombie.pid) +
           (o.zombie.code == CLD_KILLED ? " killed by signal " : " exited with status ") + std::to_string(o.zombie.status);
  }
  return p;
}

const char* descriptor_kind(uint32_t kind) {
  switch (snap::DescriptorKind(kind)) {
    case snap::DescriptorKind::kFile: return "file";
    case snap::DescriptorKind::kShimUffd: return "shim userfaultfd";
    case snap::DescriptorKind::kShimStderr: return "shim stderr copy";
    case snap::DescriptorKind::kObject: return "object";
  }
  return "?";
}

std::string open_flags(uint32_t f) {
  std::string s = (f & O_ACCMODE) == O_RDONLY ? "r" : (f & O_ACCMODE) == O_WRONLY ? "w" : "rw";
  if (f & O_APPEND) s += ",append";
  if (f & O_NONBLOCK) s += ",nonblock";
  if (f & O_DIRECTORY) s += ",directory";
  return s;
}

struct MappingTotals {
  uint64_t count[7] = {};
  uint64_t bytes[7] = {};
  uint64_t lazy_bytes = 0;
};

MappingTotals totals(const snap::ProcessImage& image) {
  MappingTotals t;
  for (uint32_t i = 0; i < image.mapping_count(); i++) {
    const snap::MappingRecord& m = image.mapping(i);
    if (m.kind > 6) continue;
    t.count[m.kind]++;
    t.bytes[m.kind] += m.end - m.start;
    if (m.flags & snap::kMappingLazy) t.lazy_bytes += m.end - m.start;
  }
  return t;
}

uint64_t stored_pages(const snap::SnapshotReader& reader, const snap::ProcessImage& image, bool lazy) {
  uint64_t n = 0;
  for (uint64_t r = 0; r < reader.region_count(); r++) {
    if (image.region_lazy(r) == lazy) n += reader.region(r).data_pages + reader.region(r).duplicate_pages + reader.region(r).packed_pages;
  }
  return n;
}

}  // namespace

void print_process_text(const snap::SnapshotReader& reader, const snap::ProcessImage& image) {
  const snap::ProcessRecord& p = image.process();
  const uint64_t ps = reader.page_size();
  std::printf("\nprocess     pid %u, uid %u, checkpointed %s, then %s\n", p.old_pid, p.uid,
              utc_time_text(p.created_ns).c_str(), p.then_stop ? "stopped" : "continued");
  std::printf("program     %s\n", image.process_string(p.exe));
  std::printf("cwd         %s\n", image.process_string(p.cwd));
  std::printf("kernel      %s, XSAVE features 0x%" PRIx64 "\n", image.process_string(p.kernel_release), p.xcr0);
  std::printf("pages       %" PRIu64 " stored to be put in place at resume, %" PRIu64 " to be served lazily\n",
              stored_pages(reader, image, false), stored_pages(reader, image, true));
  uint32_t program_threads = 0;
  for (uint32_t i = 0; i < image.thread_count(); i++) {
    const auto role = snap::ThreadRole(image.thread(i).role);
    program_threads += role == snap::ThreadRole::kLeader || role == snap::ThreadRole::kApp;
  }
  std::printf("\nthreads     %u of the program, %u of the shim\n", program_threads, image.thread_count() - program_threads);
  for (uint32_t i = 0; i < image.thread_count(); i++) {
    const snap::ThreadRecord& t = image.thread(i);
    std::printf("  %-8u %-16s %-16.16s rseq %s\n", t.old_tid, role_name(t.role), t.comm, t.rseq_area ? "yes" : "no");
  }
  const MappingTotals mt = totals(image);
  std::printf("\nmappings    %u (%" PRIu64 " bytes served lazily)\n", image.mapping_count(), mt.lazy_bytes);
  for (uint32_t k = 0; k < 7; k++) {
    if (mt.count[k]) std::printf("  %-16s %6" PRIu64 " %16" PRIu64 " bytes\n", kind_name(k), mt.count[k], mt.bytes[k]);
  }
  std::printf("\ndescriptors %u (besides stdin, stdout and stderr, which are the resumer's)\n", image.descriptor_count());
  for (uint32_t i = 0; i < image.descriptor_count(); i++) {
    const snap::DescriptorRecord d = image.descriptor(i);
    const bool object = d.kind == uint32_t(snap::DescriptorKind::kObject);
    std::printf("  %-6d %-18s", d.fd, object ? object_kind(image.object(d.object - 1).kind) : descriptor_kind(d.kind));
    if (d.same_as != -1) {
      std::printf(" dup of %d", d.same_as);
    } else if (d.kind == uint32_t(snap::DescriptorKind::kFile)) {
      std::printf(" %-16s offset %-10" PRIu64 " %s", open_flags(d.open_flags).c_str(), d.position,
                  image.descriptor_string(d.path));
    } else if (object) {
      std::printf(" %-16s object %u", open_flags(d.open_flags).c_str(), d.object - 1);
    }
    std::printf("\n");
  }
  std::printf("\nobjects     %u\n", image.object_count());
  for (uint32_t i = 0; i < image.object_count(); i++) {
    const snap::ObjectRecord& o = image.object(i);
    std::printf("  %-6u %-18s %" PRIu64 " bytes held %s%s\n", i, object_kind(o.kind), o.data_length,
                object_name(image, o).c_str(), (o.flags & snap::kObjectDeleted) ? " (deleted)" : "");
  }
  (void)ps;
}

void print_process_json(const snap::SnapshotReader& reader, const snap::ProcessImage& image) {
  const snap::ProcessRecord& p = image.process();
  auto js = [](const char* s) { return json_string(s, std::strlen(s)); };
  std::printf("\"process\":{\"pid\":%u,\"uid\":%u,\"created_ns\":%" PRIu64 ",\"then_stop\":%s,\"program\":%s,"
              "\"cwd\":%s,\"kernel\":%s,\"xcr0\":%" PRIu64 ",\"eager_pages\":%" PRIu64 ",\"lazy_pages\":%" PRIu64 ",",
              p.old_pid, p.uid, p.created_ns, p.then_stop ? "true" : "false", js(image.process_string(p.exe)).c_str(),
              js(image.process_string(p.cwd)).c_str(), js(image.process_string(p.kernel_release)).c_str(), p.xcr0,
              stored_pages(reader, image, false), stored_pages(reader, image, true));
  std::printf("\"threads\":[");
  for (uint32_t i = 0; i < image.thread_count(); i++) {
    const snap::ThreadRecord& t = image.thread(i);
    std::string comm(t.comm, strnlen(t.comm, sizeof t.comm));
    std::printf("%s{\"tid\":%u,\"role\":\"%s\",\"comm\":%s}", i ? "," : "", t.old_tid, role_name(t.role),
                js(comm.c_str()).c_str());
  }
  std::printf("],\"mappings\":[");
  for (uint32_t i = 0; i < image.mapping_count(); i++) {
    const snap::MappingRecord& m = image.mapping(i);
    std::printf("%s{\"start\":%" PRIu64 ",\"end\":%" PRIu64 ",\"prot\":\"%s\",\"kind\":\"%s\",\"lazy\":%s,\"path\":%s}",
                i ? "," : "", m.start, m.end, prot_text(m.prot).c_str(), kind_name(m.kind),
                (m.flags & snap::kMappingLazy) ? "true" : "false", js(image.mapping_string(m.path)).c_str());
  }
  std::printf("],\"descriptors\":[");
  for (uint32_t i = 0; i < image.descriptor_count(); i++) {
    const snap::DescriptorRecord d = image.descriptor(i);
    std::printf("%s{\"fd\":%d,\"kind\":\"%s\",\"flags\":\"%s\",\"offset\":%" PRIu64 ",\"path\":%s,\"same_as\":%d,"
                "\"object\":%ld}",
                i ? "," : "", d.fd, descriptor_kind(d.kind), open_flags(d.open_flags).c_str(), d.position,
                js(image.descriptor_string(d.path)).c_str(), d.same_as, long(d.object) - 1);
  }
  std::printf("],\"objects\":[");
  for (uint32_t i = 0; i < image.object_count(); i++) {
    const snap::ObjectRecord& o = image.object(i);
    std::printf("%s{\"kind\":\"%s\",\"bytes\":%" PRIu64 ",\"name\":%s,\"deleted\":%s}", i ? "," : "",
                object_kind(o.kind), o.data_length, js(object_name(image, o).c_str()).c_str(),
                (o.flags & snap::kObjectDeleted) ? "true" : "false");
  }
  std::printf("]}");
}

}  // namespace uffdlazy::cli
