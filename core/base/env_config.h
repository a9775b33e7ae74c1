// The shim's options, all read from UFFDLAZY_* environment variables and validated up front.
//
// Parsing uses no allocation (the values are copied into fixed buffers) so it can run in the
// preload constructor. A bad value is a hard error naming the variable and what it accepts:
// silently running with a typo'd option is worse than not running.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/base/line_writer.h"

namespace uffdlazy {

struct Config {
  static constexpr size_t kPathMax = 1024;
  static constexpr uint64_t kMaxReadahead = 4096;
  enum Prefetch : uint8_t { kPrefetchNone, kPrefetchWorkingSet, kPrefetchAll };

  bool disabled = false;        // UFFDLAZY_DISABLE: load, but do nothing
  bool strict = false;          // UFFDLAZY_STRICT: exit instead of failing open
  bool stats = false;           // UFFDLAZY_STATS: one summary line on stderr at exit
  bool stats_all = false;       // UFFDLAZY_STATS=all: also from processes that registered nothing
  bool user_mode_only = false;  // UFFDLAZY_USER_MODE_ONLY: allow the user-mode-only fallback
  uint64_t min_size = 64 * 1024;  // UFFDLAZY_MIN_SIZE: smaller mappings are left alone
  uint64_t fault_around = 16;     // UFFDLAZY_FAULT_AROUND: zero pages installed per fault
  int monitor_cpu = -1;           // UFFDLAZY_MONITOR_CPU: pin the monitor thread
  uint64_t spin_us = 50;          // UFFDLAZY_SPIN_US: monitor polls this long after a fault
  char snapshot[kPathMax] = {};   // UFFDLAZY_SNAPSHOT: restore from this file
  char record[kPathMax] = {};     // UFFDLAZY_RECORD: write a snapshot to this file
  char record_at[64] = {};        // UFFDLAZY_RECORD_AT: exit | signal=NAME | after=SECONDS
  char report[kPathMax] = {};     // UFFDLAZY_REPORT: JSON fault report at exit
  char trace[kPathMax] = {};      // UFFDLAZY_TRACE: per-fault trace at exit
  uint64_t trace_capacity = 1u << 20;  // UFFDLAZY_TRACE_LIMIT: faults kept in the trace
  bool no_aslr = false;           // UFFDLAZY_NO_ASLR: match snapshot regions by address
  char verify[16] = "page";       // UFFDLAZY_VERIFY: page | none (checksum each served page)
  uint64_t readahead = 1024;      // UFFDLAZY_READAHEAD: most pages one snapshot fault brings in
  uint64_t copy_threads = 2;      // UFFDLAZY_COPY_THREADS: threads copying long runs (1 or 2)
  uint8_t prefetch = kPrefetchAll;  // UFFDLAZY_PREFETCH: none | ws | all
  char ws[kPathMax] = {};         // UFFDLAZY_WS: replay this working set first
  char ws_record[kPathMax] = {};  // UFFDLAZY_WS_RECORD: write the pages the run touched here
  char checkpoint[kPathMax] = {};    // UFFDLAZY_CHECKPOINT: write a process image to this file
  char checkpoint_at[64] = {};       // UFFDLAZY_CHECKPOINT_AT: signal=NAME | after=SECONDS
  bool checkpoint_continue = false;  // UFFDLAZY_CHECKPOINT_THEN: stop (default) | continue
  bool checkpoint_incremental = false;  // UFFDLAZY_CHECKPOINT_INCREMENTAL=1: later images store changes only
  uint64_t program_pid = 0;       // UFFDLAZY_PROGRAM_PID: the process the uffdlazy command started
  char intercept[16] = "libc";    // UFFDLAZY_INTERCEPT: libc (patch libc's own entries) | symbols
  // Remote snapshots (docs/remote.md): read by the CLI and the fetcher, validated here like the rest.
  uint64_t fetch_timeout_s = 60;  // UFFDLAZY_FETCH_TIMEOUT: how long a failing request is retried
  char cache_dir[kPathMax] = {};  // UFFDLAZY_CACHE_DIR: the host cache ($XDG_CACHE_HOME/uffdlazy)
  uint64_t cache_max = 4ull << 30;  // UFFDLAZY_CACHE_MAX: its bound in bytes
  // UFFDLAZY_TEST_ALTER_LIBC (tests only, not advertised): the libc function whose body the
  // verifier is shown with one byte changed, so that its refusal path runs on real input.
  char test_alter_libc[16] = {};
};

// Fills cfg from envp (NULL-terminated "NAME=value" strings). On a bad value, writes the problem
// into err (without the "uffdlazy: " prefix) and returns false.
bool parse_config(char** envp, Config* cfg, LineWriter* err);

// "64K", "1M", "4096" -> bytes. False if malformed or overflowing.
bool parse_size(const char* s, uint64_t* out);

}  // namespace uffdlazy
