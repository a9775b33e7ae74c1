// The catalogue of operations a stress thread chooses from, grouped in families that can be
// switched on and off from the command line (so a failing class can be run alone).
#pragma once

#include <cstdint>
#include <string>

namespace stress {

enum Family : uint32_t {
  kFamTouch = 1u << 0,       // writes and reads of pages (always on)
  kFamMap = 1u << 1,         // mmap, PROT_NONE reservations, munmap whole/head/tail/middle, MAP_FIXED
  kFamProt = 1u << 2,        // mprotect splits, opening reservations
  kFamAdvise = 1u << 3,      // madvise DONTNEED, FREE, FREE+PAGEOUT, PAGEOUT, HUGEPAGE, COLLAPSE
  kFamRemap = 1u << 4,       // mremap of single mappings: move, move part, grow, shrink, DONTUNMAP
  kFamMultiVma = 1u << 5,    // mremap moves of ranges that span several VMAs (kernel >= 6.17)
  kFamIo = 1u << 6,          // read(2)/pread(2) into dropped pages, write(2) from dropped pages
  kFamFork = 1u << 7,        // fork, vfork, posix_spawn, system, _Fork, clone without CLONE_VM
  kFamSignal = 1u << 8,      // SIGUSR1 to other threads; the handler maps, touches and unmaps
  kFamSmallStacks = 1u << 9, // a third of the threads run on 64 KiB stacks (setstacksize)
  kFamLazyStacks = 1u << 10, // a third run on 64 KiB stacks the program maps itself (lazily paged)
  kFamShared = 1u << 11,     // regions one thread drops pages of while the others read them
};
inline constexpr uint32_t kAllFamilies = (1u << 12) - 1;

enum class Op : int {
  kWrite, kRead,
  kMap, kReserve, kUnmapWhole, kUnmapHead, kUnmapTail, kUnmapMiddle, kOverlayPart, kOverlayWhole,
  kProtect, kOpen,
  kDontneed, kFree, kFreePageout, kPageout, kHugepage, kCollapse,
  kMove, kMovePart, kGrowInPlace, kGrowMove, kGrowMaymove, kShrink, kDontunmap,
  kMoveMulti,
  kReadPipe, kReadFile, kWriteFromLazy,
  kFork, kVfork, kSpawn, kSystem, kUnderscoreFork, kCloneNoVm,
  kSignal,
  kSharedDrop, kSharedMovePage, kSharedRead,
  kCount
};
inline constexpr int kOpCount = int(Op::kCount);

struct OpInfo {
  const char* name;
  uint32_t family;
  uint32_t weight;  // relative frequency within the enabled operations
};

const OpInfo& op_info(Op op);
const char* family_name(uint32_t family_bit);

// "all", or a comma-separated list of family names ("map,remap,io"); touch is always included.
// Returns false (with `error` set) on an unknown name.
bool parse_families(const std::string& list, uint32_t* families, std::string* error);
std::string families_text(uint32_t families);

}  // namespace stress
