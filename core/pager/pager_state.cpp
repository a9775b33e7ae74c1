#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

constinit PagerState g;
constinit FaultStats g_stats;
constinit FaultTrace g_trace;
constinit LatencyObserver g_observer{&g_stats, nullptr, 0};
constinit Immortal<CallSiteTable> g_sites;
constinit Immortal<SnapshotRestore> g_restore;
constinit CaptureMoment g_capture_at;

}  // namespace uffdlazy::pager
