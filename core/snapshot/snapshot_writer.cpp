#include "core/snapshot/snapshot_writer.h"

#include "core/base/decimal.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "core/base/raw_syscall.h"
#include "core/snapshot/checksum.h"
#include "core/snapshot/index_digest.h"
#include "uffdlazy/version.h"

namespace uffdlazy::snap {

namespace {

// Most non-zero pages differ from zero in their first bytes, so this usually stops at once.
bool is_zero_page(const void* p, size_t n) {
  const uint64_t* w = static_cast<const uint64_t*>(p);
  for (size_t i = 0; i < n / 8; i += 8) {
    uint64_t acc = w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
    if (acc) return false;
  }
  return true;
}

void* map_anon(size_t n) {
  long r = sys::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return sys::failed(r) ? nullptr : reinterpret_cast<void*>(r);
}

// Appends the decimal digits of v to s (which has room).
char* append_decimal(char* s, uint64_t v) {
  s += format_u64(s, v);
  *s = 0;
  return s;
}

// fsyncs the directory holding `path`, so the rename itself survives a crash. Best effort: the
// snapshot is already complete under its final name when this runs.
void sync_parent_dir(const char* path) {
  char dir[kMaxPathLength + 1];
  size_t n = strlen(path);
  while (n > 0 && path[n - 1] != '/') n--;
  if (n == 0) {
    dir[0] = '.', dir[1] = 0;
  } else {
    memcpy(dir, path, n);
    dir[n] = 0;
  }
  long fd = sys::openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  sys::fsync(int(fd));
  sys::close(int(fd));
}

}  // namespace

WriteStatus SnapshotWriter::fail(WriteError e, int err) {
  if (status_.ok()) status_ = WriteStatus{e, err};
  abort();
  state_ = State::kFailed;
  return status_;
}

void SnapshotWriter::abort() {
  if (fd_ >= 0) {
    sys::close(fd_);
    fd_ = -1;
    sys::unlinkat(AT_FDCWD, tmp_path_, 0);
  }
  release_memory();
  if (state_ != State::kDone) state_ = State::kFailed;
}

void SnapshotWriter::release_memory() {
  if (buffer_) sys::munmap(buffer_, buffer_bytes_);
  if (slots_) sys::munmap(slots_, (slot_mask_ + 1) * sizeof(Slot));
  if (scratch_) sys::munmap(scratch_, page_size_);
  buffer_ = nullptr;
  slots_ = nullptr;
  scratch_ = nullptr;
  entries_.release();
  runs_.release();
  regions_.release();
  modules_.release();
  strings_.release();
  ancestors_.release();
  packed_.release();
}

WriteStatus SnapshotWriter::open(const char* final_path, const WriterOptions& options) {
  if (state_ != State::kIdle) return fail(WriteError::kBadState, 0);
  options_ = options;
  page_size_ = options.page_size ? options.page_size : uint32_t(getauxval(AT_PAGESZ));
  if (page_size_ < kMinPageSize || page_size_ > kMaxPageSize || (page_size_ & (page_size_ - 1)) ||
      (options.dedup_slots & (options.dedup_slots - 1))) {
    return fail(WriteError::kBadArgument, EINVAL);
  }
  size_t n = strlen(final_path);
  if (n == 0) return fail(WriteError::kBadArgument, ENOENT);
  if (n > kMaxPathLength - 24) return fail(WriteError::kBadArgument, ENAMETOOLONG);
  memcpy(final_path_, final_path, n + 1);
  memcpy(tmp_path_, final_path, n);
  memcpy(tmp_path_ + n, ".tmp.", 5);
  append_decimal(tmp_path_ + n + 5, uint64_t(sys::getpid()));

  buffer_bytes_ = size_t(options.buffer_pages ? options.buffer_pages : 1) * page_size_;
  buffer_ = static_cast<uint8_t*>(map_anon(buffer_bytes_));
  scratch_ = static_cast<uint8_t*>(map_anon(page_size_));
  if (options.dedup_slots) {
    slots_ = static_cast<Slot*>(map_anon(size_t(options.dedup_slots) * sizeof(Slot)));
    slot_mask_ = options.dedup_slots - 1;
  }
  if (!buffer_ || !scratch_ || (options.dedup_slots && !slots_)) return fail(WriteError::kNoMemory, ENOMEM);

  // O_EXCL so we never write through a symlink someone planted; a leftover of an earlier
  // process that had our pid is removed once.
  const int oflags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
  long fd = sys::openat(AT_FDCWD, tmp_path_, oflags, int(options.file_mode));
  if (fd == -EEXIST) {
    sys::unlinkat(AT_FDCWD, tmp_path_, 0);
    fd = sys::openat(AT_FDCWD, tmp_path_, oflags, int(options.file_mode));
  }
  if (fd < 0) return fail(WriteError::kCreateTemp, int(-fd));
  fd_ = int(fd);
  state_ = State::kOpen;
  return status_;
}

WriteStatus SnapshotWriter::begin(const ModuleIdentity& exe, uint64_t flags) {
  if (state_ != State::kOpen) return fail(WriteError::kBadState, 0);
  if (exe.path_length > kMaxPathLength || exe.id_length > kMaxIdLength) {
    return fail(WriteError::kBadArgument, EINVAL);
  }
  flags_ = flags;
  FileHeader* h = reinterpret_cast<FileHeader*>(header_block_);
  memset(header_block_, 0, sizeof header_block_);
  h->exe_path_offset = sizeof(FileHeader);
  h->exe_path_length = exe.path_length;
  h->exe_id_kind = uint32_t(exe.id_kind);
  h->exe_id_length = exe.id_length;
  memcpy(h->exe_id, exe.id, exe.id_length);
  memcpy(header_block_ + sizeof(FileHeader), exe.path, exe.path_length);
  header_size_ = uint32_t(align_up(sizeof(FileHeader) + exe.path_length + 1, 8));
  data_offset_ = align_up(header_size_, page_size_);
  data_end_ = buffer_start_ = data_offset_;
  buffer_used_ = 0;
  state_ = State::kBegun;
  return status_;
}

int SnapshotWriter::write_all(const void* buf, size_t n, uint64_t offset) {
  const uint8_t* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    long r = sys::pwrite(fd_, p, n, long(offset));
    if (r == -EINTR) continue;
    if (r < 0) return int(-r);
    if (r == 0) return ENOSPC;
    p += r;
    n -= size_t(r);
    offset += uint64_t(r);
  }
  return 0;
}

int SnapshotWriter::flush_buffer() {
  if (buffer_used_ == 0) return 0;
  int err = write_all(buffer_, buffer_used_, buffer_start_);
  if (err) return err;
  buffer_start_ += buffer_used_;
  buffer_used_ = 0;
  return 0;
}

int SnapshotWriter::append_block(const void* page, uint64_t* offset) {
  if (buffer_used_ + page_size_ > buffer_bytes_) {
    int err = flush_buffer();
    if (err) return err;
  }
  memcpy(buffer_ + buffer_used_, page, page_size_);
  buffer_used_ += page_size_;
  *offset = data_end_;
  data_end_ += page_size_;
  return 0;
}

// Linear probing over a fixed table. Probes are capped so a crowded table costs a bounded amount
// per page; a block that finds no free slot is written but not remembered (counted as dropped).
static constexpr int kMaxProbes = 32;

uint64_t SnapshotWriter::find_duplicate(uint64_t hash, const void* page) {
  if (!slots_) return 0;
  for (int i = 0; i < kMaxProbes; i++) {
    const Slot& s = slots_[(hash + uint64_t(i)) & slot_mask_];
    if (s.offset == 0) return 0;
    if (s.hash != hash) continue;
    // A 64-bit match is almost surely the same content, but a snapshot must never be wrong:
    // compare the bytes, from the write buffer or read back from the file.
    const void* existing;
    if (s.offset >= buffer_start_) {
      existing = buffer_ + (s.offset - buffer_start_);
    } else {
      if (sys::pread(fd_, scratch_, page_size_, long(s.offset)) != long(page_size_)) continue;
      existing = scratch_;
    }
    if (!memcmp(existing, page, page_size_)) return s.offset;
  }
  return 0;
}

void SnapshotWriter::remember(uint64_t hash, uint64_t offset) {
  if (!slots_) return;
  // Keep a quarter free so probe chains stay short.
  if (slots_used_ < (slot_mask_ + 1) - (slot_mask_ + 1) / 4) {
    for (int i = 0; i < kMaxProbes; i++) {
      Slot& s = slots_[(hash + uint64_t(i)) & slot_mask_];
      if (s.offset == 0) {
        s = Slot{hash, offset};
        slots_used_++;
        return;
      }
    }
  }
  stats_.dedup_dropped++;
}

long SnapshotWriter::find_or_add_module(const ModuleIdentity& m) {
  if (m.path_length > kMaxPathLength || m.id_length > kMaxIdLength) return -EINVAL;
  const ModuleRecord* mods = reinterpret_cast<const ModuleRecord*>(modules_.data());
  const size_t count = modules_.size() / sizeof(ModuleRecord);
  for (size_t i = 0; i < count; i++) {
    const ModuleRecord& r = mods[i];
    if (r.id_kind == uint32_t(m.id_kind) && r.id_length == m.id_length && !memcmp(r.id, m.id, m.id_length) &&
        r.path_length == m.path_length && !memcmp(strings_.data() + r.path_offset, m.path, m.path_length)) {
      return long(i);
    }
  }
  if (count >= kNoModule || strings_.size() + m.path_length + 1 > 0xffffffffu) return -E2BIG;
  ModuleRecord r{};
  r.path_offset = uint32_t(strings_.size());
  r.path_length = m.path_length;
  r.id_kind = uint32_t(m.id_kind);
  r.id_length = m.id_length;
  memcpy(r.id, m.id, m.id_length);
  const char nul = 0;
  if (strings_.append(m.path, m.path_length) || strings_.append(&nul, 1) || modules_.append(&r, sizeof r)) {
    return -ENOMEM;
  }
  return long(count);
}

int SnapshotWriter::store(const void* p, bool pack, PageEntry* entry) {
  if (is_zero_page(p, page_size_)) {
    *entry = make_entry(PageKind::kZero, 0, 0);
    return 0;
  }
  const uint64_t hash = checksum(p, page_size_);
  uint64_t off = find_duplicate(hash, p);
  if (off) {
    *entry = make_entry(PageKind::kDuplicate, off, hash);
    return 0;
  }
  // Packed when that saves at least a sixteenth of a page, until the packed pages take
  // max_packed_bytes (the writer keeps them in memory until commit, the reader too). The scratch
  // page is free here: find_duplicate is done with it.
  const uint64_t room = options_.max_packed_bytes > packed_.size() ? options_.max_packed_bytes - packed_.size() : 0;
  const uint64_t limit = page_size_ - page_size_ / 16 < room ? page_size_ - page_size_ / 16 : room;
  const uint64_t packed = pack && limit ? pack_page(p, page_size_, scratch_, limit) : 0;
  if (packed) {
    const uint64_t at = packed_.size();
    if (packed_.append(scratch_, packed)) return ENOMEM;
    *entry = make_packed_entry(at, hash);
    return 0;
  }
  int err = append_block(p, &off);
  if (err) return err;
  remember(hash, off);
  *entry = make_entry(PageKind::kData, off, hash);
  return 0;
}

WriteStatus SnapshotWriter::set_ancestors(const AncestorInfo* ancestors, uint32_t count) {
  if (state_ != State::kBegun || regions_.size() || ancestors_.size()) return fail(WriteError::kBadState, 0);
  if (count > kMaxAncestors) count = kMaxAncestors;
  for (uint32_t i = 0; i < count; i++) {
    AncestorRecord rec = ancestors[i].record;
    const size_t n = strlen(ancestors[i].path);
    if (n > kMaxPathLength || strings_.size() + n + 1 > 0xffffffffu) return fail(WriteError::kBadArgument, ENAMETOOLONG);
    rec.path_offset = uint32_t(strings_.size());
    rec.path_length = uint32_t(n);
    memset(rec.reserved, 0, sizeof rec.reserved);
    const char nul = 0;
    if (strings_.append(ancestors[i].path, n) || strings_.append(&nul, 1) || ancestors_.append(&rec, sizeof rec)) {
      return fail(WriteError::kNoMemory, ENOMEM);
    }
  }
  return status_;
}

WriteStatus SnapshotWriter::add_region(const RegionInfo& info, PageProvider& pages) {
  if (state_ != State::kBegun) return fail(WriteError::kBadState, 0);
  RegionRecord rec{};
  rec.start = info.start;
  rec.length = info.length;
  rec.prot = info.prot;
  rec.map_flags = info.map_flags;
  rec.page_count = align_up(info.length, page_size_) / page_size_;
  rec.run_first = runs_.size() / sizeof(RunRecord);
  rec.entry_first = entries_.size() / sizeof(PageEntry);
  rec.site_module = kNoModule;
  rec.site_offset = info.site.offset;
  rec.ordinal = info.site.ordinal;
  rec.alloc_length = info.site.alloc_length;
  if (info.site.module) {
    long m = find_or_add_module(*info.site.module);
    if (m == -ENOMEM) return fail(WriteError::kNoMemory, ENOMEM);
    if (m < 0) return fail(WriteError::kBadArgument, int(-m));
    rec.site_module = uint32_t(m);
  }

  const uint32_t depth_limit = uint32_t(ancestors_.size() / sizeof(AncestorRecord));
  RunRecord run{};  // the run being extended (pages == 0: none yet)
  auto close_run = [&]() -> bool {
    if (!run.pages) return true;
    rec.run_count++;
    return runs_.append(&run, sizeof run) == 0;
  };
  for (uint64_t i = pages.next(0, rec.page_count); i < rec.page_count; i = pages.next(i + 1, rec.page_count)) {
    PageEntry e{};
    bool have = false;
    if (depth_limit && pages.unchanged(i, &e)) {
      switch (entry_kind(e)) {
        case PageKind::kZero: e = make_entry(PageKind::kZero, 0, 0), have = true; break;
        case PageKind::kData:
        case PageKind::kDuplicate: e = make_entry(PageKind::kParent, entry_offset(e), e.checksum, 1), have = true; break;
        case PageKind::kParent:
          if (entry_depth(e) < depth_limit) {
            e = make_entry(PageKind::kParent, entry_offset(e), e.checksum, entry_depth(e) + 1);
            have = true;
          }
          break;
        default: break;
      }
    }
    if (pages.failed_errno()) return fail(WriteError::kSourceFailed, pages.failed_errno());
    if (!have) {
      const void* p = pages.page(i);
      if (pages.failed_errno()) return fail(WriteError::kSourceFailed, pages.failed_errno());
      if (!p) continue;  // absent: in no run
      int err = store(p, info.pack, &e);
      if (err) return fail(err == ENOMEM ? WriteError::kNoMemory : WriteError::kWrite, err);
    }
    switch (entry_kind(e)) {
      case PageKind::kZero: rec.zero_pages++; break;
      case PageKind::kData: rec.data_pages++; break;
      case PageKind::kDuplicate: rec.duplicate_pages++; break;
      case PageKind::kPacked: rec.packed_pages++; break;
      default: rec.parent_pages++; break;
    }
    if (!run.pages || i != run.first_page + run.pages || run.pages == 0xffffffffu) {
      if (!close_run()) return fail(WriteError::kNoMemory, ENOMEM);
      run = RunRecord{i, rec.entry_first + rec.entry_count, 0, 0};
    }
    run.pages++;
    rec.entry_count++;
    if (entries_.append(&e, sizeof e)) return fail(WriteError::kNoMemory, ENOMEM);
  }
  rec.absent_pages = rec.page_count - rec.entry_count;
  if (!close_run() || regions_.append(&rec, sizeof rec)) return fail(WriteError::kNoMemory, ENOMEM);

  stats_.regions++;
  stats_.runs += rec.run_count;
  stats_.pages += rec.page_count;
  stats_.data_pages += rec.data_pages;
  stats_.zero_pages += rec.zero_pages;
  stats_.duplicate_pages += rec.duplicate_pages;
  stats_.parent_pages += rec.parent_pages;
  stats_.packed_pages += rec.packed_pages;
  stats_.packed_bytes = packed_.size();
  stats_.absent_pages += rec.absent_pages;
  return status_;
}

WriteStatus SnapshotWriter::add_section(uint32_t type, uint32_t flags, const void* data, size_t length) {
  if (state_ != State::kBegun) return fail(WriteError::kBadState, 0);
  if (extra_count_ == kMaxExtraSections || type <= kLastSectionType) {
    return fail(WriteError::kBadArgument, EINVAL);
  }
  extra_[extra_count_++] = ExtraSection{type, flags, data, length};
  return status_;
}

int SnapshotWriter::write_section(SectionType type, uint32_t flags, const void* data, size_t len, uint64_t* pos,
                                  SectionEntry* entry) {
  *entry = SectionEntry{uint32_t(type), flags, *pos, len, checksum(data, len)};
  int err = write_all(data, len, *pos);
  *pos = align_up(*pos + len, 8);
  return err;
}

WriteStatus SnapshotWriter::commit() {
  if (state_ != State::kBegun) return fail(WriteError::kBadState, 0);
  int err = flush_buffer();
  if (err) return fail(WriteError::kWrite, err);

  // Metadata follows the data, so the data could be streamed before its index was known.
  SectionEntry table[8 + kMaxExtraSections];
  const size_t base_sections = 6 + (ancestors_.size() ? 1 : 0) + (packed_.size() ? 1 : 0);
  const size_t sections = base_sections + extra_count_;
  uint64_t pos = data_end_;
  table[0] = SectionEntry{uint32_t(SectionType::kData), kSectionRequired | kSectionNoChecksum, data_offset_,
                          data_end_ - data_offset_, 0};
  const uint32_t req = kSectionRequired;
  if ((err = write_section(SectionType::kStrings, req, strings_.data(), strings_.size(), &pos, &table[1])) ||
      (err = write_section(SectionType::kModules, req, modules_.data(), modules_.size(), &pos, &table[2])) ||
      (err = write_section(SectionType::kRegions, req, regions_.data(), regions_.size(), &pos, &table[3])) ||
      (err = write_section(SectionType::kPageEntries, req, entries_.data(), entries_.size(), &pos, &table[4])) ||
      (err = write_section(SectionType::kPageRuns, req, runs_.data(), runs_.size(), &pos, &table[5])) ||
      (ancestors_.size() &&
       (err = write_section(SectionType::kAncestors, req, ancestors_.data(), ancestors_.size(), &pos, &table[6]))) ||
      (packed_.size() && (err = write_section(SectionType::kPacked, req, packed_.data(), packed_.size(), &pos,
                                              &table[ancestors_.size() ? 7 : 6])))) {
    return fail(WriteError::kWrite, err);
  }
  for (size_t i = 0; i < extra_count_; i++) {
    const ExtraSection& x = extra_[i];
    if ((err = write_section(SectionType(x.type), x.flags, x.data, x.length, &pos, &table[base_sections + i]))) {
      return fail(WriteError::kWrite, err);
    }
  }
  const uint64_t table_offset = pos;
  const size_t table_bytes = sections * sizeof(SectionEntry);
  if ((err = write_all(table, table_bytes, table_offset))) return fail(WriteError::kWrite, err);

  FileHeader* h = reinterpret_cast<FileHeader*>(header_block_);
  memcpy(h->magic, kMagic, sizeof kMagic);
  h->version_major = kVersionMajor;
  h->version_minor = kVersionMinor;
  h->header_size = header_size_;
  h->header_checksum = 0;
  h->fixed_size = sizeof(FileHeader);
  h->page_size = page_size_;
  h->flags = flags_;
  // Cut to fit (a NUL always ends it): the release and commit are what a reader needs to know.
  memset(h->writer_version, 0, sizeof h->writer_version);
  memcpy(h->writer_version, UFFDLAZY_VERSION_STRING,
         sizeof(UFFDLAZY_VERSION_STRING) - 1 < sizeof h->writer_version - 1 ? sizeof(UFFDLAZY_VERSION_STRING) - 1
                                                                          : sizeof h->writer_version - 1);
  h->created_ns = options_.created_ns;
  if (!h->created_ns) {
    struct timespec ts{};
    sys::clock_gettime(CLOCK_REALTIME, &ts);
    h->created_ns = uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
  }
  h->file_size = table_offset + table_bytes;
  h->section_table_offset = table_offset;
  h->section_count = uint32_t(sections);
  h->section_entry_size = sizeof(SectionEntry);
  h->section_table_checksum = checksum(table, table_bytes);
  // The index digest covers the header with both its checksum and the digest zero, then the
  // section table, then every section but the data in table order (index_digest.h).
  memset(h->index_digest, 0, sizeof h->index_digest);
  IndexDigest digest;
  digest.header(header_block_, header_size_);
  digest.add(table, table_bytes);
  digest.add(strings_.data(), strings_.size());
  digest.add(modules_.data(), modules_.size());
  digest.add(regions_.data(), regions_.size());
  digest.add(entries_.data(), entries_.size());
  digest.add(runs_.data(), runs_.size());
  digest.add(ancestors_.data(), ancestors_.size());
  digest.add(packed_.data(), packed_.size());
  for (size_t i = 0; i < extra_count_; i++) digest.add(extra_[i].data, extra_[i].length);
  digest.finish(h->index_digest);
  h->header_checksum = checksum(header_block_, header_size_);
  // The header goes last: until it is written the file has no magic and no reader accepts it.
  if ((err = write_all(header_block_, header_size_, 0))) return fail(WriteError::kWrite, err);

  if (options_.sync) {
    long r = sys::fsync(fd_);
    if (r < 0) return fail(WriteError::kSync, int(-r));
  }
  long r = sys::close(fd_);
  fd_ = -1;
  if (r < 0 && r != -EINTR) {
    sys::unlinkat(AT_FDCWD, tmp_path_, 0);
    return fail(WriteError::kSync, int(-r));
  }
  r = sys::renameat(AT_FDCWD, tmp_path_, AT_FDCWD, final_path_);
  if (r < 0) {
    sys::unlinkat(AT_FDCWD, tmp_path_, 0);
    return fail(WriteError::kRename, int(-r));
  }
  if (options_.sync) sync_parent_dir(final_path_);
  stats_.file_size = h->file_size;
  release_memory();
  state_ = State::kDone;
  return status_;
}

}  // namespace uffdlazy::snap
