// What the processes of one run share: a program and the programs it starts (wrappers such as
// env, timeout or sh -c, their children, the programs those exec).
//
// Several of them may load the shim with the same UFFDLAZY_* settings. The rules that keep them
// from stepping on each other need a little shared memory: which process restored the snapshot,
// which snapshot, report and trace hold the plain file names. One page (a memfd), created by the
// uffdlazy command or by the first process of the run that needs it. Its descriptor sits at a high
// number (core/base/high_fd.h) and is inherited through fork and exec; UFFDLAZY_RUN names it as
// FD:DEV:INO:PID: the number, the file's identity, and the process that holds it for the run (the
// uffdlazy command, else the creator). Each process maps the page when it starts, after checking
// that the number still names that file; if it does not (the program or a wrapper closed it, maybe
// reusing the number), it opens the holder's descriptor through /proc/PID/fd, checked the same
// way, and keeps no descriptor of its own; failing that the page is lost to it and it starts a run
// of its own (docs/descriptors.md). Updates take a futex lock in the page (shared between
// processes).
//
// The rules (docs/processes.md):
//  - a snapshot is restored by the processes whose executable it was recorded from; the others
//    pass the settings on to the programs they run;
//  - the plain name of a recording holds the capture of the process of the run with the most
//    registered memory at its capture moment; of a report or trace, that of the process that
//    served the most faults. A name with %p gets one file per process instead.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uffdlazy {

struct RunShared {
  static constexpr uint64_t kMagic = 0x4e55524c5a414c55ull;  // "ULAZLRUN"
  uint64_t magic;
  uint32_t lock;              // 0 free, 1 held, 2 held with waiters
  uint32_t first_pid;         // the first process of the run to load the shim
  uint32_t launcher_pid;      // the uffdlazy command waiting for the run, 0 if none
  uint32_t restored;          // processes that restored the snapshot
  uint32_t captures_ok;       // snapshots written under the plain name
  uint32_t captures_failed;   // captures that failed (each said why on stderr)
  uint32_t snapshot_pid;      // the process whose snapshot has the plain name
  uint32_t reserved;
  int64_t snapshot_bytes;     // its registered bytes at its capture; -1 none
  int64_t report_faults;      // faults of the process whose report has the plain name; -1 none
  int64_t trace_faults;       // the same for the trace
};

class RunState {
 public:
  // Maps the run's page named by UFFDLAZY_RUN in envp, or, if there is none and `create`, makes one
  // and adds UFFDLAZY_RUN to the environment. False if the run has no usable page (each process
  // then acts alone).
  bool attach(char** envp, bool create);
  bool attached() const { return shared_ != nullptr; }
  // This process was the first of the run to load the shim.
  bool first() const;
  // Runs fn(RunShared&) under the page's lock; does nothing without a page.
  template <class Fn>
  void update(Fn&& fn) {
    if (!shared_) return;
    lock();
    fn(*shared_);
    unlock();
  }
  const RunShared* shared() const { return shared_; }

  // UFFDLAZY_RUN's value: "FD:DEV:INO:PID" and its terminating zero.
  static constexpr size_t kValueMax = 4 * 21;
  // A new page at a high descriptor, inherited across exec (the uffdlazy command, or a process
  // starting a run). Sets *value to UFFDLAZY_RUN's value naming `holder` as the process that keeps
  // it open. Returns the fd, or -errno (nothing is left open then).
  static int create_page(RunShared** mapped, char (&value)[kValueMax], long holder);

 private:
  void lock();
  void unlock();

  RunShared* shared_ = nullptr;
  uint32_t pid_ = 0;
};

}  // namespace uffdlazy
