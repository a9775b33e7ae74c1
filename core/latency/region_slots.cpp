#include "core/latency/region_slots.h"

#include "core/base/store_changed.h"
#include "core/latency/fault_record.h"

namespace uffdlazy {

uint32_t RegionSlots::slot_for(uint32_t region_id) {
  if (region_id == last_id_) return last_slot_;
  uint32_t slot = kOther;
  if (region_id != kNoRegion) {
    const uint32_t key = region_id + 1;
    for (size_t i = hash(region_id, kMapSize), probes = 0; probes < kMapSize; i = (i + 1) & (kMapSize - 1), probes++) {
      if (map_keys_[i] == key) {
        slot = map_slots_[i];
        break;
      }
      if (map_keys_[i] == 0) {
        uint32_t n = used_.load(std::memory_order_relaxed);
        if (n < kTracked) {
          map_keys_[i] = key;
          map_slots_[i] = uint8_t(n);
          slot_ids_[n] = region_id;
          used_.store(n + 1, std::memory_order_release);
          slot = n;
        }
        break;
      }
    }
  }
  last_id_ = region_id;
  last_slot_ = slot;
  return slot;
}

bool RegionSlots::describe(uint32_t region_id, uint64_t start, uint64_t length, const char* label) {
  if (region_id == kNoRegion) return false;
  const uint32_t key = region_id + 1;
  for (size_t i = hash(region_id, kInfo), probes = 0; probes < kInfo; i = (i + 1) & (kInfo - 1), probes++) {
    RegionInfo& e = info_[i];
    uint32_t k = e.key.load(std::memory_order_acquire);
    if (k == 0) {
      if (!e.key.compare_exchange_strong(k, key, std::memory_order_acq_rel)) {
        if (k != key) continue;  // lost the slot to another region
      }
    } else if (k != key) {
      continue;
    }
    e.ready.store(false, std::memory_order_relaxed);
    e.start = start;
    e.length = length;
    size_t n = 0;
    if (label) {
      for (; label[n] && n + 1 < RegionInfo::kLabelMax; n++) e.label[n] = label[n];
    }
    e.label[n] = 0;
    e.ready.store(true, std::memory_order_release);
    return true;
  }
  return false;
}

const RegionInfo* RegionSlots::info(uint32_t region_id) const {
  if (region_id == kNoRegion) return nullptr;
  const uint32_t key = region_id + 1;
  for (size_t i = hash(region_id, kInfo), probes = 0; probes < kInfo; i = (i + 1) & (kInfo - 1), probes++) {
    uint32_t k = info_[i].key.load(std::memory_order_acquire);
    if (k == 0) return nullptr;
    if (k == key) return info_[i].ready.load(std::memory_order_acquire) ? &info_[i] : nullptr;
  }
  return nullptr;
}

void RegionSlots::reset() {
  // Only what is set (a forked child's pages stay shared with its parent's).
  for (auto& k : map_keys_) store_changed(k, 0);
  used_.store(0, std::memory_order_relaxed);
  last_id_ = UINT32_MAX;
  last_slot_ = kOther;
  for (auto& e : info_) {
    store_changed(e.key, 0);
    store_changed(e.ready, false);
  }
}

}  // namespace uffdlazy
