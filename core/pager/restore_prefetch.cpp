#include "core/pager/restore_prefetch.h"

#include "core/base/immortal.h"
#include "core/pager/pager_state.h"
#include "core/snapshot/working_set.h"

namespace uffdlazy::pager {

namespace {

constinit Immortal<snap::WorkingSetReader> g_replay;
constinit Immortal<snap::WorkingSetLog> g_record;

}  // namespace

bool prepare_restore_prefetch(LineWriter* err) {
  if (!g_restore || !g_restore->ready()) return true;
  if (g.cfg.ws[0]) {
    snap::WsStatus st = g_replay.construct()->open(g.cfg.ws, g_restore->reader());
    if (!st.ok()) {
      err->str(g.cfg.ws).str(": ");
      snap::describe(st, g.cfg.snapshot, *err);
      return false;
    }
  }
  if (g.cfg.ws_record[0]) {
    const uint64_t most = g_restore->page_source().owed_all_pages();
    if (!g_record.construct()->init(most, uint32_t(g.page_size))) {
      err->str(g.cfg.ws_record).str(": cannot map memory for the working-set record");
      return false;
    }
  }
  return true;
}

void configure_restore_prefetch(Monitor::Setup* setup) {
  setup->readahead_pages = uint32_t(g.cfg.readahead);
  switch (g.cfg.prefetch) {
    case Config::kPrefetchNone: setup->prefetch = PrefetchMode::kNone; break;
    case Config::kPrefetchWorkingSet: setup->prefetch = PrefetchMode::kWorkingSet; break;
    default: setup->prefetch = PrefetchMode::kAll; break;
  }
  // A forked child restores nothing (its memory came complete from the parent).
  if (g.forked) return;
  if (g_replay && g_replay->run_count()) {
    setup->working_set = g_replay->runs();
    setup->working_set_runs = g_replay->run_count();
  }
  if (g_record) setup->touches = g_record.get();
}

void region_restored(int32_t source) { g.monitor.region_restored(source); }

void write_working_set_at_exit(int fd) {
  if (!g_record || g.forked || !g_restore || !g_restore->ready()) return;
  g_record->freeze();
  if (mine()) g.monitor.sync();  // a fault being answered has finished logging
  snap::WsStatus st = g_record->write(g.cfg.ws_record, g_restore->reader());
  LineWriter w;
  w.str("uffdlazy: ");
  if (st.ok()) {
    w.str("working set ").str(g.cfg.ws_record).str(" written: ").u64(g_record->page_count()).str(" pages in ")
        .u64(g_record->run_count()).str(" runs");
  } else {
    w.str(g.cfg.ws_record).str(": ");
    snap::describe(st, g.cfg.snapshot, w);
  }
  if (fd >= 0) w.emit(fd);
}

}  // namespace uffdlazy::pager
