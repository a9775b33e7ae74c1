// Where a region's pages come from when they are first touched.
//
// Regions without a source (the default) are filled with zeros, exactly as the kernel would.
// A source (the snapshot store) owes each of its pages at most once: after a page has been served,
// dropped (madvise, munmap) or made irrelevant, every later fault on it reads zeros.
#pragma once

#include <cstdint>

namespace uffdlazy {

enum class PageKind : uint8_t {
  kZero,       // serve zeros (a stored zero page, or the source does not owe this page)
  kData,       // serve `data`
  kDuplicate,  // serve `data`, which is shared with other pages
  kCorrupt,    // the stored page failed its checksum: must never reach the program
};

struct PageContent {
  PageKind kind;
  const void* data;
};

// Where an owed page's content is, for installing runs: `where` orders data blocks, so pages whose
// blocks are adjacent (where + page size) can be read and installed together.
struct PageLocation {
  PageKind kind;   // kZero: a stored zero page (when owed); kData / kDuplicate: a block
  bool owed;       // false: the source owes nothing here (the rest is meaningless)
  uint64_t where;  // the block's position (a file offset, or an address), for kData / kDuplicate
  bool pending = false;  // a remote source's block that has not landed yet: not readable now
};

// The result of reading pages' content into a buffer.
struct PagesRead {
  enum Stop : uint8_t { kAll, kCorrupt, kIoError };
  uint32_t pages;  // read and checked (a prefix of those asked for)
  Stop stop;       // why not all: the page after the prefix failed its checksum, or reading failed
  int err;         // errno for kIoError
};

// A run of consecutive pages of one source region: how a working set names pages (the snapshot
// region index and page numbers, which do not depend on where the region is mapped). Also the
// on-disk record of a working-set file (FORMAT.md), hence the fixed layout.
struct SourceRun {
  uint32_t source;
  uint32_t pages;
  uint64_t first_page;
};
static_assert(sizeof(SourceRun) == 16);

class PageSource {
 public:
  // What page `page` of source region `source` should hold now, without consuming it.
  virtual PageContent peek(int32_t source, uint64_t page) { (void)source; (void)page; return {PageKind::kZero, nullptr}; }
  // The page is in place (or can no longer be served): never serve it again.
  virtual void consume(int32_t source, uint64_t page) { (void)source; (void)page; }
  // The program dropped pages [first, first + count): forget them.
  virtual void drop(int32_t source, uint64_t first, uint64_t count) { (void)source; (void)first; (void)count; }
  // Pages still owed, anywhere. Used to decide whether stopping the monitor is safe.
  virtual uint64_t owed_pages() const { return 0; }
  // Owed pages of every kind, stored zero pages included (what a background fill could still do).
  virtual uint64_t owed_all_pages() const { return owed_pages(); }
  // Whether the source still owes this page (data, duplicate or a stored zero page). peek() says
  // kZero both for a stored zero page and for a page not owed; this tells them apart.
  virtual bool owed(int32_t source, uint64_t page) { return peek(source, page).kind != PageKind::kZero; }
  // The first page in [from, end) of `source` that is still owed, or `end`.
  virtual uint64_t next_owed(int32_t source, uint64_t from, uint64_t end) {
    while (from < end && !owed(source, from)) from++;
    return from;
  }
  // Where page `page`'s content is, without reading or checking it.
  virtual PageLocation locate(int32_t source, uint64_t page) {
    const bool is_owed = owed(source, page);
    PageContent c = is_owed ? peek(source, page) : PageContent{PageKind::kZero, nullptr};
    return PageLocation{c.kind, is_owed, reinterpret_cast<uintptr_t>(c.data)};
  }
  // The content of owed data pages [first, first + count) (adjacent blocks, as locate() said),
  // checked wherever the source checks: *data points at it afterwards, either in `stage` (room for
  // `count` pages, filled by the call) or in memory of the source's own that stays valid. Stops at
  // the first page that fails.
  // Whether read_pages(..., stage = nullptr, ...) of runs of at least `count` pages works in
  // place and may run on another thread (the copy helper) while this one uses the source.
  virtual bool reads_in_place(uint32_t count) const { (void)count; return false; }
  virtual PagesRead read_pages(int32_t source, uint64_t first, uint32_t count, void* stage, uint64_t page_size,
                               const void** data) {
    for (uint32_t i = 0; i < count; i++) {
      PageContent c = peek(source, first + i);
      if (c.kind != PageKind::kData && c.kind != PageKind::kDuplicate) return PagesRead{i, PagesRead::kCorrupt, 0};
      __builtin_memcpy(static_cast<char*>(stage) + uint64_t(i) * page_size, c.data, page_size);
    }
    *data = stage;
    return PagesRead{count, PagesRead::kAll, 0};
  }
  // A descriptor the source reads from on the monitor thread (kept in the monitor's own
  // descriptor table), or -1.
  virtual int descriptor() const { return -1; }

  // A remote source (core/remote/remote_page_source.h): blocks arrive from a fetcher process.
  // locate() says `pending` for a block not landed yet; want() asks the fetcher for the blocks of
  // owed pages [page, page + count) that have not landed (monitor thread; no allocation);
  // wait_landed() blocks until page `page`'s block has landed (false: it never will, the process
  // is being stopped); doorbell() is the descriptor that becomes readable when blocks land,
  // on_doorbell() reads it (true: something landed) and stops the process if fetching failed while
  // pages are still owed.
  virtual void want(int32_t source, uint64_t page, uint32_t count) { (void)source; (void)page; (void)count; }
  virtual bool wait_landed(int32_t source, uint64_t page) { (void)source; (void)page; return true; }
  virtual int doorbell() const { return -1; }
  virtual bool on_doorbell() { return false; }

 protected:
  ~PageSource() = default;
};

// Told about each owed page a fault served, in the order of first touch (the working-set record).
// Monitor thread only; must not allocate.
class TouchLog {
 public:
  virtual void touched(int32_t source, uint64_t page) = 0;

 protected:
  ~TouchLog() = default;
};

}  // namespace uffdlazy
