// fork: the child's copy of the registered regions is not registered (the shim does not use
// UFFD_FEATURE_EVENT_FORK; see docs/fork.md), so before the fork every page a snapshot still owes is
// put in place (regions matched while the fork is under way fill themselves before their mmap
// returns), and the child starts a monitor of its own for its new mappings. Every way of making a
// child with a copy of the memory goes through here: fork() through pthread_atfork, _Fork() and
// clone() without CLONE_VM through their interposers. vfork, posix_spawn and system share the
// parent's memory (CLONE_VM), whose faults the parent's monitor serves; so does a clone(CLONE_VM)
// child, which may outlive the parent (before_child_sharing_memory).
#include <csignal>

#include "core/base/mono_clock.h"
#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/tree.h"
#include "core/pager/lazy_pager.h"
#include "core/pager/pager_state.h"

namespace uffdlazy::pager {

void reserve_tree_slot() {
  if (!mine()) return;
  if ((g.cfg.checkpoint[0] || ckpt::is_member()) && ckpt::tree_page()) ckpt::reserve_member_slot();
}

void tree_slot_forked() {
  if (!mine()) return;
  ckpt::member_slot_forked();
}

void before_fork() {
  if (!mine()) return;
  // Counted first: a region matched from here on fills itself, the fill below takes the rest.
  g.forks_in_progress.fetch_add(1, std::memory_order_acq_rel);
  g.monitor.fill_all_owed();
}

void after_fork_parent() {
  if (!mine()) return;
  g.forks_in_progress.fetch_sub(1, std::memory_order_acq_rel);
  g.counters.fork.fetch_add(1, std::memory_order_relaxed);
}

void before_child_sharing_memory(bool shares_descriptors, bool fill) {
  if (!mine()) return;
  if (fill) {
    // Never taken back: this process and the child share every mapping from now on.
    g.forks_in_progress.fetch_add(1, std::memory_order_acq_rel);
    g.monitor.fill_all_owed();
  }
  if (shares_descriptors) {
    // The monitor and the copy helper keep their own reference (at the same number, in their own
    // tables): g.uffd stays as it is for them.
    g.descriptor_lost.store(true, std::memory_order_relaxed);
    if (g.uffd.still_open()) sys::close(g.uffd.fd());
  }
}

void in_child_sharing_memory() {
  if (!g.active.load(std::memory_order_acquire)) return;
  if (g.uffd.still_open()) sys::close(g.uffd.fd());
}

void after_fork_child() {
  if (!g.active.load(std::memory_order_acquire)) return;
  // The child has one thread and none of the parent's registrations. The inherited uffd belongs
  // to the parent's monitor: drop our reference and start over.
  g.active.store(false, std::memory_order_release);
  g.lock.reset_after_fork();
  g.table.clear();
  g.counters.reset();
  g_stats.reset();
  g_stats.start(mono_now_ns());
  g_trace.clear();
  g.uffd.close();
  g.descriptor_lost.store(false, std::memory_order_relaxed);
  g.monitor.forget_after_fork();
  g.end_watch.forget();
  if (g_sites) g_sites->reset_after_fork();
  // The snapshot, report and trace files are the parent's: a child must not overwrite them, nor
  // report the parent's restore as its own. A capture signal is the parent's business too.
  g.cfg.record[0] = 0;
  // A checkpoint's child joins its tree (core/checkpoint/tree.h): the root's checkpoint stops and
  // writes it too. It never takes a checkpoint of its own.
  const bool member = (g.cfg.checkpoint[0] || ckpt::is_member()) && ckpt::tree_page();
  g.cfg.checkpoint[0] = 0;
  g.cfg.report[0] = 0;
  g.cfg.trace[0] = 0;
  g.forked = true;
  g.forks_in_progress.store(0, std::memory_order_relaxed);
  // A child inherits no memory lock and no mlockall(MCL_FUTURE); its heap is its own to page.
  g.locked_future.store(false, std::memory_order_relaxed);
  g.heap_aside.store(false, std::memory_order_relaxed);
  // The child's memory is complete (nothing owed): without a userfaultfd of its own it runs
  // correctly unpaged, so it fails open unless the user asked for strict mode.
  g.cfg.strict = g.strict_asked;
  // A checkpoint's trigger: the program's own view of it comes back.
  if (!capture_forked() && g_capture_at.kind == CaptureMoment::kSignal) {
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigaction(g_capture_at.signal, &dfl, nullptr);
  }
  g.owner_pid = sys::getpid();
  bring_up();
  if (member) ckpt::become_member(ckpt::checkpoint_now);
}

}  // namespace uffdlazy::pager
