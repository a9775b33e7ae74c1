#include "core/snapshot/process_image.h"

#include <cstring>
#include <sys/mman.h>

#include "core/base/aside_mmap.h"
#include "core/base/raw_syscall.h"
#include "core/checkpoint/resume_protocol.h"

namespace uffdlazy::snap {

namespace {

ReadStatus malformed(const char* what) { return ReadStatus{ReadError::kMalformed, 0, 0, 0, what}; }

constexpr uint32_t kMaxThreads = 4104;        // the restorer's table (the shim's 4096 and its own)
constexpr int32_t kMaxDescriptor = 1 << 20;   // the kernel's fs.nr_open ceiling
constexpr uint32_t kMaxRseqLength = 4096;

}  // namespace

ProcessImage::~ProcessImage() {
  if (lazy_regions_) sys::munmap(lazy_regions_, lazy_bytes_);
}

bool ProcessImage::is_process_image(const SnapshotReader& r) {
  return r.is_open() && r.process_section(uint32_t(ProcessSection::kProcess)).data != nullptr;
}

ReadStatus ProcessImage::table(SectionView v, uint32_t min_record, Table* out) {
  if (!v.data) return malformed("a process image section is missing");
  if (v.length < sizeof(TableHeader)) return malformed("process image section too short");
  TableHeader h;
  memcpy(&h, v.data, sizeof h);
  if (h.record_size < min_record || h.record_size % 8) return malformed("process image record size");
  const uint64_t records_end = sizeof(TableHeader) + uint64_t(h.count) * h.record_size;
  if (records_end > v.length || h.strings_offset < records_end ||
      uint64_t(h.strings_offset) + h.strings_length > v.length) {
    return malformed("process image table out of its section");
  }
  out->base = v.data;
  out->count = h.count;
  out->record_size = h.record_size;
  out->strings = reinterpret_cast<const char*>(v.data + h.strings_offset);
  out->strings_length = h.strings_length;
  return ReadStatus{};
}

bool ProcessImage::in_place(uint64_t addr, uint64_t length, bool writable) const {
  if (!length || addr + length < addr) return false;
  const long i = mapping_at(addr);
  if (i < 0) return false;
  const MappingRecord& m = mapping(uint32_t(i));
  const bool kind_ok = m.kind == uint32_t(MappingKind::kAnonymous) || m.kind == uint32_t(MappingKind::kStack) ||
                       m.kind == uint32_t(MappingKind::kFilePrivate);
  return kind_ok && addr + length <= m.end && !(m.flags & kMappingLazy) && (!writable || (m.prot & 2 /* PROT_WRITE */));
}

long ProcessImage::mapping_at(uint64_t addr) const {
  long lo = 0, hi = long(mappings_.count) - 1;
  while (lo <= hi) {
    const long mid = (lo + hi) / 2;
    const MappingRecord& m = mapping(uint32_t(mid));
    if (addr < m.start) {
      hi = mid - 1;
    } else if (addr >= m.end) {
      lo = mid + 1;
    } else {
      return mid;
    }
  }
  return -1;
}

ReadStatus ProcessImage::check_objects(const SnapshotReader& reader, bool check_object_data) {
  object_data_ = reader.process_section(uint32_t(ProcessSection::kObjectData));
  if (check_object_data && !reader.object_data_intact()) {
    return ReadStatus{ReadError::kIndexChecksum, 0, 0, 0, "object data section"};
  }
  for (uint32_t i = 0; i < objects_.count; i++) {
    const ObjectRecord& o = object(i);
    if (o.kind > uint32_t(ObjectKind::kChild)) return malformed("unknown object kind");
    if (o.data_offset > object_data_.length || o.data_length > object_data_.length - o.data_offset) {
      return malformed("object data out of its section");
    }
    if (!string_ok(objects_, o.path) || !string_ok(objects_, o.peer_path)) return malformed("object string out of range");
    uint64_t entry = 0;
    if (o.kind == uint32_t(ObjectKind::kEpoll)) entry = sizeof(EpollEntry);
    if (o.kind == uint32_t(ObjectKind::kInotify)) entry = sizeof(InotifyWatch);
    if (o.kind == uint32_t(ObjectKind::kDeletedFile) || o.kind == uint32_t(ObjectKind::kMemfd)) entry = sizeof(FileExtent);
    if (uint64_t(o.count) * entry > o.data_length) return malformed("object entries out of its data");
    if (o.kind == uint32_t(ObjectKind::kInotify)) {
      for (uint32_t w = 0; w < o.count; w++) {
        InotifyWatch watch;
        memcpy(&watch, object_data_.data + o.data_offset + uint64_t(w) * sizeof watch, sizeof watch);
        if (!string_ok(objects_, watch.path)) return malformed("inotify watch path out of range");
      }
    }
    if (o.kind == uint32_t(ObjectKind::kDeletedFile) || o.kind == uint32_t(ObjectKind::kMemfd)) {
      uint64_t bytes = uint64_t(o.count) * sizeof(FileExtent);
      for (uint32_t x = 0; x < o.count; x++) {
        FileExtent e;
        memcpy(&e, object_data_.data + o.data_offset + uint64_t(x) * sizeof e, sizeof e);
        if (e.length > o.data_length || e.offset > o.file.size || e.length > o.file.size - e.offset) {
          return malformed("file extent out of range");
        }
        bytes += (e.length + 7) / 8 * 8;
        if (bytes > o.data_length) return malformed("file extent out of its data");
      }
    }
    if (o.kind == uint32_t(ObjectKind::kUnixSocket) || o.kind == uint32_t(ObjectKind::kInetSocket)) {
      const SocketState& k = o.socket;
      if (k.peer >= int32_t(objects_.count) || k.peer < -1 || k.listener >= int32_t(objects_.count) || k.listener < -1) {
        return malformed("socket peer out of range");
      }
    }
  }
  return ReadStatus{};
}

ReadStatus ProcessImage::open(const SnapshotReader& reader, bool check_object_data) {
  ReadStatus s;
  if (!(s = table(reader.process_section(uint32_t(ProcessSection::kProcess)), kProcessRecordSize10, &process_table_)).ok() ||
      !(s = table(reader.process_section(uint32_t(ProcessSection::kThreads)), kThreadRecordSize10, &threads_)).ok() ||
      !(s = table(reader.process_section(uint32_t(ProcessSection::kMappings)), sizeof(MappingRecord), &mappings_)).ok() ||
      !(s = table(reader.process_section(uint32_t(ProcessSection::kDescriptors)), kDescriptorRecordSize10,
                  &descriptors_)).ok()) {
    return s;
  }
  objects_ = Table{};
  if (reader.process_section(uint32_t(ProcessSection::kObjects)).data) {
    if (!(s = table(reader.process_section(uint32_t(ProcessSection::kObjects)), sizeof(ObjectRecord), &objects_)).ok() ||
        !(s = check_objects(reader, check_object_data)).ok()) {
      return s;
    }
  }
  if (process_table_.count != 1) return malformed("process record count");
  process_ = record<ProcessRecord>(process_table_, 0);
  const ProcessRecord& p = *process_;
  if (!string_ok(process_table_, p.cwd) || !string_ok(process_table_, p.kernel_release) ||
      !string_ok(process_table_, p.exe)) {
    return malformed("process record string out of range");
  }
  if (p.auxv_words > kMaxAuxvWords || p.auxv_words % 2) return malformed("auxiliary vector size");
  if (p.page_size != reader.page_size()) return malformed("process page size disagrees with the header");
  bool leader = false;
  for (uint32_t i = 0; i < threads_.count; i++) {
    const ThreadRecord& t = thread(i);
    if (t.role > uint32_t(ThreadRole::kCapture)) return malformed("unknown thread role");
    if (t.role == uint32_t(ThreadRole::kLeader)) {
      if (leader) return malformed("two thread-group leaders");
      leader = true;
    }
  }
  if (!leader) return malformed("no thread-group leader");
  if (threads_.count > kMaxThreads) return malformed("more threads than a resume can make");
  const uint64_t ps = reader.page_size();
  uint64_t prev_end = 0;
  for (uint32_t i = 0; i < mappings_.count; i++) {
    const MappingRecord& m = mapping(i);
    if (m.start >= m.end || m.start % ps || m.end % ps || m.start < prev_end) return malformed("mapping out of order");
    if (m.kind > uint32_t(MappingKind::kShared)) return malformed("unknown mapping kind");
    if (!string_ok(mappings_, m.path)) return malformed("mapping path out of range");
    if (m.object > objects_.count) return malformed("mapping object out of range");
    if (m.kind == uint32_t(MappingKind::kShared) &&
        (!m.object || object(m.object - 1).kind != uint32_t(ObjectKind::kSharedMemory))) {
      return malformed("shared mapping without its shared memory");
    }
    if (m.object && m.kind != uint32_t(MappingKind::kShared)) {
      const uint32_t k = object(m.object - 1).kind;
      if ((m.kind != uint32_t(MappingKind::kFilePrivate) && m.kind != uint32_t(MappingKind::kFileShared)) ||
          (k != uint32_t(ObjectKind::kDeletedFile) && k != uint32_t(ObjectKind::kMemfd))) {
        return malformed("mapping of an object that is not a file");
      }
    }
    prev_end = m.end;
  }
  // What the restorer writes, or jumps to, before the program runs must lie in memory it maps
  // and puts in place itself: else the resume would end in a fault, with nothing said.
  if (!in_place(p.resume_block, sizeof(ckpt::ResumeBlock), true)) {
    return malformed("the shim's resume block lies outside the memory a resume puts in place");
  }
  if (p.doorbell) {
    const long d = mapping_at(p.doorbell);
    if (p.doorbell % ps || d < 0 || mapping(uint32_t(d)).kind != uint32_t(MappingKind::kAnonymous)) {
      return malformed("the monitor's doorbell lies outside the process's anonymous memory");
    }
  }
  if (p.uffd_fd < 0 || p.uffd_fd >= kMaxDescriptor) return malformed("the shim's userfaultfd number");
  uint32_t monitors = 0, captures = 0;
  for (uint32_t i = 0; i < threads_.count; i++) {
    const ThreadRecord& t = thread(i);
    monitors += t.role == uint32_t(ThreadRole::kMonitor);
    captures += t.role == uint32_t(ThreadRole::kCapture);
    if (t.tid_address && !in_place(t.tid_address, sizeof(int32_t), true)) {
      return malformed("a thread's id address lies outside the memory a resume puts in place");
    }
    if (t.rseq_area && (t.rseq_length < 32 || t.rseq_length > kMaxRseqLength || !in_place(t.rseq_area, t.rseq_length, true))) {
      return malformed("a thread's rseq area lies outside the memory a resume puts in place");
    }
    if (!in_place(t.context.rsp - 8, 16, true)) return malformed("a thread's stack pointer lies outside its stack");
    const long code = mapping_at(t.context.rip);
    if (code < 0 || !(mapping(uint32_t(code)).prot & 4 /* PROT_EXEC */)) {
      return malformed("a thread continues outside the process's code");
    }
  }
  if (monitors > 1 || captures > 1) return malformed("more than one monitor or checkpoint thread");
  for (uint32_t i = 0; i < descriptors_.count; i++) {
    const DescriptorRecord d = descriptor(i);
    if (d.fd < 0 || d.fd >= kMaxDescriptor || d.kind > uint32_t(DescriptorKind::kObject)) {
      return malformed("bad descriptor record");
    }
    if (!string_ok(descriptors_, d.path)) return malformed("descriptor path out of range");
    if ((d.kind == uint32_t(DescriptorKind::kObject)) != (d.object != 0) || d.object > objects_.count) {
      return malformed("descriptor object out of range");
    }
    if (d.same_as != -1) {
      // A dup of an earlier descriptor that is not itself a dup.
      bool found = false;
      for (uint32_t j = 0; j < i && !found; j++) {
        const DescriptorRecord o = descriptor(j);
        found = o.fd == d.same_as && o.same_as == -1;
      }
      if (!found) return malformed("descriptor shares a description it does not follow");
    }
  }
  // Every stored region lies inside mappings (without gaps) that agree on laziness, and only
  // private mappings hold pages.
  const uint64_t n = reader.region_count();
  if (n) {
    lazy_bytes_ = (n + 63) / 64 * 8;
    lazy_bytes_ = (lazy_bytes_ + ps - 1) / ps * ps;
    long m = mmap_aside(lazy_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sys::failed(m)) return ReadStatus{ReadError::kOpenFailed, int(-m)};
    lazy_regions_ = reinterpret_cast<uint64_t*>(m);
  }
  // Lazy regions in address order (the resumed monitor walks them beside its table), eager ones
  // too; a lazy and an eager region cannot overlap (no mapping is both).
  uint64_t lazy_end = 0, eager_end = 0;
  for (uint64_t r = 0; r < n; r++) {
    const RegionRecord& rec = reader.region(r);
    long i = mapping_at(rec.start);
    if (i < 0) return malformed("a stored region lies outside every mapping");
    const bool lazy = mapping(uint32_t(i)).flags & kMappingLazy;
    uint64_t& last_end = lazy ? lazy_end : eager_end;
    if (rec.start < last_end) return malformed("stored regions out of order or overlapping");
    uint64_t at = rec.start;
    if (rec.page_count > (~uint64_t(0) - rec.start) / ps) return malformed("a stored region lies outside every mapping");
    const uint64_t end = rec.start + rec.page_count * ps;
    while (at < end) {
      if (i >= long(mappings_.count)) return malformed("a stored region lies outside every mapping");
      const MappingRecord& mm = mapping(uint32_t(i));
      if (mm.start != at && at != rec.start) return malformed("a stored region spans a hole");
      if (bool(mm.flags & kMappingLazy) != lazy) return malformed("a stored region is partly lazy");
      if (mm.kind == uint32_t(MappingKind::kFileShared) || mm.kind == uint32_t(MappingKind::kVdso) ||
          mm.kind == uint32_t(MappingKind::kVsyscall) || (lazy && mm.kind == uint32_t(MappingKind::kShared))) {
        return malformed("a stored region lies in a mapping that holds no pages");
      }
      at = mm.end;
      i++;
    }
    // The restorer puts eager pages in place from this file alone: only the monitor, which opens
    // the ancestors, serves pages left in them.
    if (!lazy && rec.parent_pages) return malformed("an eager region has pages in an ancestor image");
    // The monitor serves lazy pages from the file mapping, whole blocks: only the restorer, which
    // unpacks them, sees packed pages.
    if (lazy && rec.packed_pages) return malformed("a lazy region has packed pages");
    last_end = end;
    if (lazy) lazy_regions_[r / 64] |= uint64_t(1) << (r % 64);
  }
  return ReadStatus{};
}

}  // namespace uffdlazy::snap
