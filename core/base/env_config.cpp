#include "core/base/env_config.h"


#include <cstring>

namespace uffdlazy {

namespace {

constexpr const char kPrefix[] = "UFFDLAZY_";

bool parse_bool(const char* v, bool* out) {
  if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")) {
    *out = true;
    return true;
  }
  if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !*v) {
    *out = false;
    return true;
  }
  return false;
}

// An s3:// or http(s):// location (docs/remote.md); the shim itself reads local files only.
bool is_url(const char* v) { return !strncmp(v, "s3://", 5) || !strncmp(v, "http://", 7) || !strncmp(v, "https://", 8); }

bool copy_path(const char* v, char* dst, size_t cap) {
  size_t n = strlen(v);
  if (n == 0 || n >= cap) return false;
  memcpy(dst, v, n + 1);
  return true;
}

}  // namespace

bool parse_size(const char* s, uint64_t* out) {
  if (!s || !*s) return false;
  uint64_t v = 0;
  const char* p = s;
  for (; *p >= '0' && *p <= '9'; p++) {
    uint64_t next = v * 10 + uint64_t(*p - '0');
    if (next / 10 != v) return false;
    v = next;
  }
  if (p == s) return false;
  uint64_t mult = 1;
  switch (*p) {
    case 0: break;
    case 'k': case 'K': mult = 1ull << 10; p++; break;
    case 'm': case 'M': mult = 1ull << 20; p++; break;
    case 'g': case 'G': mult = 1ull << 30; p++; break;
    default: return false;
  }
  if (*p == 'i' || *p == 'B') p++;  // accept 64KiB / 64KB spelled out
  if (*p == 'B') p++;
  if (*p) return false;
  if (v && mult > ~0ull / v) return false;
  *out = v * mult;
  return true;
}

bool parse_config(char** envp, Config* cfg, LineWriter* err) {
  bool readahead_set = false, prefetch_set = false;
  for (char** e = envp; e && *e; e++) {
    const char* kv = *e;
    if (strncmp(kv, kPrefix, sizeof kPrefix - 1)) continue;
    const char* eq = strchr(kv, '=');
    if (!eq) continue;
    const char* name = kv + sizeof kPrefix - 1;
    size_t name_len = size_t(eq - name);
    const char* v = eq + 1;
    auto is = [&](const char* n) { return strlen(n) == name_len && !strncmp(name, n, name_len); };
    auto bad = [&](const char* accepted) {
      err->str("UFFDLAZY_").str(name, name_len).str("='").str(v).str("' is not valid; use ").str(accepted);
      return false;
    };
    const char* kBoolWords = "1 or 0 (also yes/no, true/false, on/off)";
    if (is("DISABLE")) {
      if (!parse_bool(v, &cfg->disabled)) return bad(kBoolWords);
    } else if (is("STRICT")) {
      if (!parse_bool(v, &cfg->strict)) return bad(kBoolWords);
    } else if (is("STATS")) {
      // 1: a line from each process that registered memory; all: from every process.
      cfg->stats_all = !strcmp(v, "all");
      if (!cfg->stats_all && !parse_bool(v, &cfg->stats)) {
        return bad("1 (a line from the program), all (from every process of the run) or 0");
      }
      if (cfg->stats_all) cfg->stats = true;
    } else if (is("USER_MODE_ONLY")) {
      if (!parse_bool(v, &cfg->user_mode_only)) return bad(kBoolWords);
    } else if (is("NO_ASLR")) {
      if (!parse_bool(v, &cfg->no_aslr)) return bad(kBoolWords);
    } else if (is("MIN_SIZE")) {
      if (!parse_size(v, &cfg->min_size)) return bad("a byte count with an optional K, M or G suffix, e.g. 64K");
    } else if (is("FAULT_AROUND")) {
      if (!parse_size(v, &cfg->fault_around) || cfg->fault_around < 1 || cfg->fault_around > 512)
        return bad("a number of pages from 1 to 512 (1 turns fault-around off)");
    } else if (is("MONITOR_CPU")) {
      uint64_t cpu;
      if (!parse_size(v, &cpu) || cpu >= 1024) return bad("a CPU number from 0 to 1023");
      cfg->monitor_cpu = int(cpu);
    } else if (is("SPIN_US")) {
      if (!parse_size(v, &cfg->spin_us) || cfg->spin_us > 1000000)
        return bad("microseconds from 0 (sleep at once) to 1000000");
    } else if (is("TRACE_LIMIT")) {
      if (!parse_size(v, &cfg->trace_capacity) || cfg->trace_capacity == 0 || cfg->trace_capacity > (1ull << 28))
        return bad("a number of faults from 1 to 268435456, e.g. 1M");
    } else if (is("SNAPSHOT")) {
      if (!copy_path(v, cfg->snapshot, sizeof cfg->snapshot)) return bad("a file path (1 to 1023 bytes)");
    } else if (is("RECORD")) {
      if (!copy_path(v, cfg->record, sizeof cfg->record)) return bad("a file path (1 to 1023 bytes)");
    } else if (is("RECORD_AT")) {
      bool ok = !strcmp(v, "exit") || !strncmp(v, "signal=", 7) || !strncmp(v, "after=", 6);
      if (!ok || !copy_path(v, cfg->record_at, sizeof cfg->record_at))
        return bad("exit, signal=NAME or after=SECONDS");
    } else if (is("REPORT")) {
      if (!copy_path(v, cfg->report, sizeof cfg->report)) return bad("a file path (1 to 1023 bytes)");
    } else if (is("TRACE")) {
      if (!copy_path(v, cfg->trace, sizeof cfg->trace)) return bad("a file path (1 to 1023 bytes)");
    } else if (is("VERIFY")) {
      if (strcmp(v, "page") && strcmp(v, "none")) return bad("page (checksum every served page) or none");
      copy_path(v, cfg->verify, sizeof cfg->verify);
    } else if (is("READAHEAD")) {
      if (!parse_size(v, &cfg->readahead) || cfg->readahead < 1 || cfg->readahead > Config::kMaxReadahead)
        return bad("a number of pages from 1 to 4096 (1 turns readahead off)");
      readahead_set = true;
    } else if (is("COPY_THREADS")) {
      if (!parse_size(v, &cfg->copy_threads) || cfg->copy_threads < 1 || cfg->copy_threads > 2)
        return bad("1 (the monitor copies alone) or 2 (a second thread copies half of each long run)");
    } else if (is("PREFETCH")) {
      if (!strcmp(v, "none")) {
        cfg->prefetch = Config::kPrefetchNone;
      } else if (!strcmp(v, "ws")) {
        cfg->prefetch = Config::kPrefetchWorkingSet;
      } else if (!strcmp(v, "all")) {
        cfg->prefetch = Config::kPrefetchAll;
      } else {
        return bad("none (on demand only), ws (the working set, then stop) or all (the working set, then "
                   "everything else)");
      }
      prefetch_set = true;
    } else if (is("WS")) {
      if (is_url(v)) return bad("a local file path: a working set at a URL is not read yet (uffdlazy pull URL FILE first)");
      if (!copy_path(v, cfg->ws, sizeof cfg->ws)) return bad("a file path (1 to 1023 bytes)");
    } else if (is("WS_RECORD")) {
      if (!copy_path(v, cfg->ws_record, sizeof cfg->ws_record)) return bad("a file path (1 to 1023 bytes)");
    } else if (is("CHECKPOINT")) {
      if (!copy_path(v, cfg->checkpoint, sizeof cfg->checkpoint)) return bad("a file path (1 to 1023 bytes)");
    } else if (is("CHECKPOINT_AT")) {
      bool ok = !strncmp(v, "signal=", 7) || !strncmp(v, "after=", 6);
      if (!ok || !copy_path(v, cfg->checkpoint_at, sizeof cfg->checkpoint_at))
        return bad("signal=NAME or after=SECONDS");
    } else if (is("CHECKPOINT_THEN")) {
      if (!strcmp(v, "stop")) cfg->checkpoint_continue = false;
      else if (!strcmp(v, "continue")) cfg->checkpoint_continue = true;
      else return bad("stop (end the program once the image is written) or continue");
    } else if (is("CHECKPOINT_INCREMENTAL")) {
      if (strcmp(v, "0") && strcmp(v, "1")) return bad("1 (later checkpoints store only the pages changed) or 0");
      cfg->checkpoint_incremental = v[0] == '1';
    } else if (is("PROGRAM_PID")) {
      if (!parse_size(v, &cfg->program_pid) || cfg->program_pid == 0 || cfg->program_pid > (1u << 22))
        return bad("a process id (the uffdlazy command sets it)");
    } else if (is("INTERCEPT")) {
      if (strcmp(v, "libc") && strcmp(v, "symbols"))
        return bad("libc (see libc's own mmap/munmap/mremap/madvise/brk calls) or symbols (exported symbols only)");
      copy_path(v, cfg->intercept, sizeof cfg->intercept);
    } else if (is("FETCH_TIMEOUT")) {
      if (!parse_size(v, &cfg->fetch_timeout_s) || cfg->fetch_timeout_s < 1 || cfg->fetch_timeout_s > 86400)
        return bad("seconds from 1 to 86400");
    } else if (is("CACHE_DIR")) {
      if (!copy_path(v, cfg->cache_dir, sizeof cfg->cache_dir)) return bad("a directory path (1 to 1023 bytes)");
    } else if (is("CACHE_MAX")) {
      if (!parse_size(v, &cfg->cache_max) || (cfg->cache_max != 0 && cfg->cache_max < (1u << 20)))
        return bad("a byte count of at least 1M with an optional K, M or G suffix, e.g. 4G (0: no cache)");
    } else if (is("TEST_ALTER_LIBC")) {
      if (!copy_path(v, cfg->test_alter_libc, sizeof cfg->test_alter_libc)) return bad("a libc function name");
    } else if (is("FETCHER")) {
      // The uffdlazy-fetch a restore from a URL starts (read where it is started: pager_startup).
      if (!*v) return bad("a file path");
    } else if (is("LIBRARY") || is("RESTORER")) {
      // Where the uffdlazy command finds its parts (tools/part_paths.h); nothing for the shim to do.
    } else if (is("RUN")) {
      // The page the processes of one run share (core/pager/run_state.h); read there.
    } else {
      err->str("unknown variable UFFDLAZY_").str(name, name_len)
          .str(" (known: DISABLE, STRICT, STATS, MIN_SIZE, FAULT_AROUND, MONITOR_CPU, SPIN_US, USER_MODE_ONLY, SNAPSHOT, RECORD, RECORD_AT, "
               "NO_ASLR, REPORT, TRACE, TRACE_LIMIT, VERIFY, READAHEAD, COPY_THREADS, PREFETCH, WS, WS_RECORD, CHECKPOINT, CHECKPOINT_AT, "
                 "CHECKPOINT_THEN, CHECKPOINT_INCREMENTAL, PROGRAM_PID, INTERCEPT, FETCH_TIMEOUT, CACHE_DIR, CACHE_MAX, FETCHER)");
      return false;
    }
  }
  if ((cfg->ws[0] || cfg->ws_record[0]) && !cfg->snapshot[0]) {
    err->str(cfg->ws[0] ? "UFFDLAZY_WS" : "UFFDLAZY_WS_RECORD")
        .str(" needs UFFDLAZY_SNAPSHOT: a working set belongs to the snapshot being restored");
    return false;
  }
  if (cfg->ws_record[0]) {
    // Every page the run touches must fault to be seen: nothing may be installed ahead of it.
    if (cfg->ws[0]) {
      err->str("UFFDLAZY_WS_RECORD cannot be combined with UFFDLAZY_WS: a replayed page is never touched by a fault, "
               "so it could not be recorded");
      return false;
    }
    if ((readahead_set && cfg->readahead != 1) || (prefetch_set && cfg->prefetch != Config::kPrefetchNone)) {
      err->str("UFFDLAZY_WS_RECORD needs every touched page to fault: leave UFFDLAZY_READAHEAD and "
               "UFFDLAZY_PREFETCH unset (recording turns them off) or set them to 1 and none");
      return false;
    }
    cfg->readahead = 1;
    cfg->prefetch = Config::kPrefetchNone;
  }
  return true;
}

}  // namespace uffdlazy
