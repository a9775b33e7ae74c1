// Which regions get their own latency histogram, and what the report says about each region.
//
// Two fixed tables keyed by region id:
//  - slots: the first kTracked distinct region ids that fault get a histogram slot; faults in
//    any later region share the "other" slot. Claimed and read only by the monitor thread.
//  - info: start, length and label of up to kInfo registered regions, filled by the thread that
//    registers a region (claims are lock-free CAS, so concurrent registrations are safe) and
//    read when the report is written.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace uffdlazy {

struct RegionInfo {
  static constexpr size_t kLabelMax = 48;
  std::atomic<uint32_t> key{0};  // region id + 1; 0 = empty
  std::atomic<bool> ready{false};
  uint64_t start = 0;
  uint64_t length = 0;
  char label[kLabelMax] = {};
};

class RegionSlots {
 public:
  static constexpr uint32_t kTracked = 64;
  static constexpr uint32_t kOther = kTracked;  // slot shared by untracked regions and kNoRegion
  static constexpr size_t kInfo = 512;

  // Slot for region_id, claiming one if it is new and any are left. Monitor thread only.
  uint32_t slot_for(uint32_t region_id);
  uint32_t used() const { return used_.load(std::memory_order_relaxed); }
  // Region id that owns slot s (s < used()).
  uint32_t slot_region(uint32_t s) const { return slot_ids_[s]; }

  // Remembers where a region is and what it is; a later call for the same id updates it.
  // False if the info table is full (the region is still counted, just not described).
  bool describe(uint32_t region_id, uint64_t start, uint64_t length, const char* label);
  const RegionInfo* info(uint32_t region_id) const;

  void reset();

 private:
  static constexpr size_t kMapSize = 2 * kTracked;  // load factor <= 1/2 keeps probes short
  static size_t hash(uint32_t id, size_t size) { return size_t((id * 0x9E3779B1u) >> 7) & (size - 1); }

  uint32_t map_keys_[kMapSize] = {};   // region id + 1; 0 = empty
  uint8_t map_slots_[kMapSize] = {};
  uint32_t slot_ids_[kTracked] = {};
  std::atomic<uint32_t> used_{0};
  uint32_t last_id_ = UINT32_MAX;      // faults cluster by region: skip the probe
  uint32_t last_slot_ = kOther;
  RegionInfo info_[kInfo];
};

}  // namespace uffdlazy
