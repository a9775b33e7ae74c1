// A snapshot served from a remote object as a PageSource: the ordinary SnapshotPageSource over the
// view (a memfd the fetcher writes blocks into), plus one question before a block is read: has it
// landed? (docs/remote.md, "How a remote restore runs".) A block not landed yet is `pending` in
// locate(); the monitor parks the fault and asks the fetcher for it (want), and retries when the
// doorbell rings. peek() (a capture, a fork's fill) waits for its block instead.
//
// Monitor thread (and the shim's other threads for peek); no allocation, raw system calls only.
#pragma once

#include <cstdint>

#include "core/monitor/page_source.h"
#include "core/remote/remote_channel.h"
#include "core/snapshot/snapshot_page_source.h"

namespace uffdlazy::remote {

class RemotePageSource final : public uffdlazy::PageSource {
 public:
  // `inner` serves the view; `control` is the mapped control block; `bell` the doorbell eventfd;
  // `location` (kept, NUL-terminated) names the object in messages.
  void init(snap::SnapshotPageSource* inner, void* control, int bell, const char* location);

  uffdlazy::PageContent peek(int32_t source, uint64_t page) override;
  void consume(int32_t source, uint64_t page) override { inner_->consume(source, page); }
  void drop(int32_t source, uint64_t first, uint64_t count) override { inner_->drop(source, first, count); }
  uint64_t owed_pages() const override { return inner_->owed_pages(); }
  uint64_t owed_all_pages() const override { return inner_->owed_all_pages(); }
  bool owed(int32_t source, uint64_t page) override { return inner_->owed(source, page); }
  uint64_t next_owed(int32_t source, uint64_t from, uint64_t end) override {
    return inner_->next_owed(source, from, end);
  }
  uffdlazy::PageLocation locate(int32_t source, uint64_t page) override;
  bool reads_in_place(uint32_t count) const override { return inner_->reads_in_place(count); }
  uffdlazy::PagesRead read_pages(int32_t source, uint64_t first, uint32_t count, void* stage, uint64_t page_size,
                                 const void** data) override {
    return inner_->read_pages(source, first, count, stage, page_size, data);
  }
  int descriptor() const override { return inner_->descriptor(); }
  void want(int32_t source, uint64_t page, uint32_t count) override;
  bool wait_landed(int32_t source, uint64_t page) override { return wait(source, page, true); }
  // From a thread or process other than the monitor (a capture): waits without asking (the ring
  // has one producer, the monitor); the fetcher's sweep brings the block.
  bool wait_landed_quietly(int32_t source, uint64_t page) { return wait(source, page, false); }
  int doorbell() const override { return bell_; }
  bool on_doorbell() override;

  const Channel& channel() const { return ch_; }

 private:
  // The data block page `page` of `source` is stored in (UINT64_MAX: none in this file).
  uint64_t block_of(int32_t source, uint64_t page) const;
  [[noreturn]] void stop_process();
  bool wait(int32_t source, uint64_t page, bool ask);

  snap::SnapshotPageSource* inner_ = nullptr;
  const snap::SnapshotReader* reader_ = nullptr;
  Channel ch_;
  int bell_ = -1;
  const char* location_ = "";
  uint64_t data_offset_ = 0;
  uint64_t block_size_ = 4096;
};

}  // namespace uffdlazy::remote
