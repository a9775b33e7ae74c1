#include "core/base/aside_mmap.h"
#include "core//pager/call_site_table.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include "core/base/blocked_section.h"
#include "core/base/proc_maps.h"
#include "core/base/raw_syscall.h"

namespace uffdlazy {

namespace {

constexpr size_t kBufSize = 32 * 1024;  // longer than any maps line (a path is at most 4095 bytes)

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

int CallSiteTable::init(uint32_t ordinal_slots) {
  release();
  if (ordinal_slots == 0 || ordinal_slots > (1u << 24)) return -EINVAL;
  uint32_t slots = 16;
  while (slots < ordinal_slots) slots <<= 1;

  const size_t modules = sizeof(Module) * kMaxModules;
  const size_t ranges = sizeof(Range) * kMaxRanges;
  const size_t ords = sizeof(OrdinalSlot) * slots;
  const size_t total = (modules + ranges + ords + kBufSize + 4095) & ~size_t(4095);
  const long m = mmap_aside(total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(m)) return -ENOMEM;
  mem_ = reinterpret_cast<void*>(m);
  mem_size_ = total;
  char* p = static_cast<char*>(mem_);
  slots_ = reinterpret_cast<OrdinalSlot*>(p);
  p += ords;
  ranges_ = reinterpret_cast<Range*>(p);
  p += ranges;
  modules_ = reinterpret_cast<Module*>(p);
  p += modules;
  buf_ = p;
  slot_mask_ = slots - 1;
  return 0;
}

void CallSiteTable::release() {
  if (mem_) sys::munmap(mem_, mem_size_);
  mem_ = nullptr;
  mem_size_ = 0;
  modules_ = nullptr;
  ranges_ = nullptr;
  slots_ = nullptr;
  buf_ = nullptr;
  module_count_ = range_count_ = slot_mask_ = ordinal_used_ = 0;
  maps_reads_ = 0;
}

const char* CallSiteTable::module_path(int32_t m) const {
  return m >= 0 && uint32_t(m) < module_count() ? modules_[m].path : "";
}

uint32_t CallSiteTable::module_path_length(int32_t m) const {
  return m >= 0 && uint32_t(m) < module_count() ? modules_[m].path_length : 0;
}

uintptr_t CallSiteTable::module_base(int32_t m) const {
  return m >= 0 && uint32_t(m) < module_count() ? modules_[m].base : 0;
}

const CallSiteTable::Range* CallSiteTable::find_range(uintptr_t address) const {
  for (uint32_t i = 0; i < range_count_; i++) {
    if (address >= ranges_[i].start && address < ranges_[i].end) return &ranges_[i];
  }
  return nullptr;
}

int32_t CallSiteTable::module_for(const char* path, size_t n, uintptr_t base) {
  const uint32_t count = module_count_;
  for (uint32_t i = 0; i < count; i++) {
    const Module& m = modules_[i];
    if (m.base == base && m.path_length == n && !memcmp(m.path, path, n)) return int32_t(i);
  }
  if (count >= kMaxModules || n > kMaxPath) return -1;
  Module& m = modules_[count];
  m.base = base;
  m.path_length = uint32_t(n);
  memcpy(m.path, path, n);
  m.path[n] = 0;
  __atomic_store_n(&module_count_, count + 1, __ATOMIC_RELEASE);
  return int32_t(count);
}

// "start-end perms offset dev inode    path"
void CallSiteTable::parse_line(const char* line, size_t n) {
  MapsEntry m;
  if (!parse_maps_line(line, n, &m) || !m.exec || range_count_ >= kMaxRanges) return;
  int32_t module = -1;
  if (m.path_length && m.path[0] == '/') module = module_for(m.path, m.path_length, uintptr_t(m.start - m.offset));
  ranges_[range_count_++] = Range{m.start, m.end, module};
}

void CallSiteTable::read_maps() {
  range_count_ = 0;  // rebuilt from scratch; modules keep their indices
  auto line = [](const char* l, size_t n, void* self) { static_cast<CallSiteTable*>(self)->parse_line(l, n); };
  if (for_each_line("/proc/self/maps", buf_, kBufSize, line, this) == 0) {
    __atomic_fetch_add(&maps_reads_, 1, __ATOMIC_RELAXED);
  }
}

SiteId CallSiteTable::resolve_locked(uintptr_t address) {
  if (!mem_) return SiteId{};
  const Range* r = find_range(address);
  if (!r) {
    read_maps();
    r = find_range(address);
  }
  if (!r || r->module < 0) return SiteId{};
  return SiteId{r->module, uint64_t(address - modules_[r->module].base)};
}

SiteId CallSiteTable::resolve(uintptr_t address) {
  BlockedSection g(lock_);
  return resolve_locked(address);
}

uint32_t* CallSiteTable::ordinal_slot(SiteId site, bool insert) {
  if (!mem_ || !site.known()) return nullptr;
  const uint32_t key = uint32_t(site.module) + 1;
  for (uint32_t i = uint32_t(mix(key, site.offset)) & slot_mask_;; i = (i + 1) & slot_mask_) {
    OrdinalSlot& s = slots_[i];
    if (s.module_plus_1 == key && s.offset == site.offset) return &s.count;
    if (s.module_plus_1 != 0) continue;
    // Empty: the site is new. Keep a quarter free so probes stay short and always end.
    if (!insert || ordinal_used_ + 1 > (slot_mask_ + 1) / 4 * 3) return nullptr;
    s.module_plus_1 = key;
    s.offset = site.offset;
    s.count = 0;
    ordinal_used_++;
    return &s.count;
  }
}

uint32_t CallSiteTable::next_ordinal(SiteId site) {
  BlockedSection g(lock_);
  uint32_t* c = ordinal_slot(site, true);
  if (!c || *c == kNoOrdinal - 1) return kNoOrdinal;
  return (*c)++;
}

uint32_t CallSiteTable::ordinal_count(SiteId site) {
  BlockedSection g(lock_);
  uint32_t* c = ordinal_slot(site, false);
  return c ? *c : 0;
}

SiteId CallSiteTable::record(const void* caller, uint32_t* ordinal) {
  BlockedSection g(lock_);
  const SiteId s = resolve_locked(reinterpret_cast<uintptr_t>(caller));
  uint32_t* c = ordinal_slot(s, true);
  if (!c || *c == kNoOrdinal - 1) {
    *ordinal = kNoOrdinal;
  } else {
    *ordinal = (*c)++;
  }
  return s;
}

}  // namespace uffdlazy
