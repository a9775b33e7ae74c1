#include "tests/stress/operations.h"

#include <sstream>

namespace stress {

namespace {

const OpInfo kOps[kOpCount] = {
    {"write", kFamTouch, 200},
    {"read", kFamTouch, 60},
    {"mmap", kFamMap, 50},
    {"reserve", kFamMap, 25},
    {"munmap_whole", kFamMap, 20},
    {"munmap_head", kFamMap, 15},
    {"munmap_tail", kFamMap, 15},
    {"munmap_middle", kFamMap, 15},
    {"fixed_part", kFamMap, 25},
    {"fixed_whole", kFamMap, 15},
    {"mprotect", kFamProt, 40},
    {"open_reserve", kFamProt, 25},
    {"dontneed", kFamAdvise, 60},
    {"free", kFamAdvise, 20},
    {"free_pageout", kFamAdvise, 20},
    {"pageout", kFamAdvise, 8},
    {"hugepage", kFamAdvise, 5},
    {"collapse", kFamAdvise, 4},
    {"move", kFamRemap, 30},
    {"move_part", kFamRemap, 25},
    {"grow_in_place", kFamRemap, 25},
    {"grow_move", kFamRemap, 20},
    {"grow_maymove", kFamRemap, 15},
    {"shrink", kFamRemap, 20},
    {"dontunmap", kFamRemap, 20},
    {"move_multi_vma", kFamMultiVma, 25},
    {"read_pipe", kFamIo, 25},
    {"read_file", kFamIo, 25},
    {"write_from_lazy", kFamIo, 25},
    {"fork", kFamFork, 3},
    {"vfork", kFamFork, 3},
    {"posix_spawn", kFamFork, 1},
    {"system", kFamFork, 1},
    {"_Fork", kFamFork, 3},
    {"clone", kFamFork, 3},
    {"signal", kFamSignal, 30},
    {"shared_drop", kFamShared, 30},
    {"shared_move_page", kFamShared, 15},
    {"shared_read", kFamShared, 80},
};

struct FamilyName {
  uint32_t bit;
  const char* name;
};
const FamilyName kFamilies[] = {
    {kFamTouch, "touch"},   {kFamMap, "map"},           {kFamProt, "prot"},     {kFamAdvise, "advise"},
    {kFamRemap, "remap"},   {kFamMultiVma, "multivma"}, {kFamIo, "io"},         {kFamFork, "fork"},
    {kFamSignal, "signal"}, {kFamSmallStacks, "smallstacks"}, {kFamLazyStacks, "lazystacks"},
    {kFamShared, "shared"},
};

}  // namespace

const OpInfo& op_info(Op op) { return kOps[int(op)]; }

const char* family_name(uint32_t bit) {
  for (const auto& f : kFamilies)
    if (f.bit == bit) return f.name;
  return "?";
}

bool parse_families(const std::string& list, uint32_t* families, std::string* error) {
  uint32_t out = kFamTouch;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    if (item == "all") {
      out |= kAllFamilies;
      continue;
    }
    bool found = false;
    for (const auto& f : kFamilies) {
      if (item == f.name) {
        out |= f.bit;
        found = true;
      }
    }
    if (!found) {
      *error = "unknown operation family '" + item + "'";
      return false;
    }
  }
  *families = out;
  return true;
}

std::string families_text(uint32_t families) {
  if ((families & kAllFamilies) == kAllFamilies) return "all";
  std::string s;
  for (const auto& f : kFamilies) {
    if (!(families & f.bit)) continue;
    if (!s.empty()) s += ",";
    s += f.name;
  }
  return s;
}

}  // namespace stress
