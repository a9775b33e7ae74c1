// uffdlazy-fetch: a remote restore's fetcher (docs/remote.md, "How a remote restore runs").
//
//   uffdlazy-fetch --view=FD --control=FD --bell=FD --parent=PID LOCATION
//
// Started by the shim (core/remote/fetcher_launch.cpp) with the view memfd, the control memfd and
// the monitor's doorbell eventfd. Opens the object (header and metadata, index digest checked)
// into the view, sizes and fills the control block, says kReady; then fetches blocks into the
// view: first what the monitor's ring asks for (a fault is waiting), then, with UFFDLAZY_PREFETCH
// all (the default), the rest of the data area in large chunks behind them. Every block comes
// from the host cache when it is there. After each landing it sets the blocks' landed bits and
// rings the doorbell. A request that keeps failing until UFFDLAZY_FETCH_TIMEOUT, or an object
// replaced meanwhile (412 to If-Match), is written to the control block (kBroken) and the
// doorbell rung: the monitor stops the program if it still owes pages. It ends when every block
// has landed, or with the program (a pidfd of it, polled every 200 ms at most).
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/remote/remote_channel.h"
#include "core/snapshot/checksum.h"
#include "core/snapshot/format.h"
#include "core/snapshot/sha256.h"
#include "core/snapshot/snapshot_reader.h"
#include "tools/fetch/host_cache.h"
#include "tools/remote/http_client.h"
#include "tools/remote/location.h"
#include "tools/remote/remote_snapshot.h"

using namespace uffdlazy;
using namespace uffdlazy::remote;

namespace {

constexpr uint64_t kSweepBlocks = 1024;   // 4 MiB chunks behind the faults
constexpr uint64_t kMaxRequestBlocks = 1024;
constexpr int kWorkers = 4;

struct Fetcher {
  Channel ch;
  ChannelHeader* h = nullptr;
  int view_fd = -1;
  int bell_fd = -1;
  uint64_t data_offset = 0;
  uint64_t block_size = 4096;
  uint64_t blocks = 0;
  std::string etag;
  std::string location;
  std::vector<uint64_t> sums;  // each block's XXH3-64 (from the index)
  std::vector<uint8_t> sum_known;
  HostCache cache;
  bool prefetch_all = true;

  std::mutex lock;
  std::condition_variable work;
  std::deque<RingEntry> urgent;
  std::vector<uint8_t> inflight;  // under lock
  uint64_t sweep_cursor = 0;
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> landed_count{0};
};

void ring_bell(Fetcher& f) {
  const uint64_t one = 1;
  (void)!write(f.bell_fd, &one, sizeof one);
}

void set_message(ChannelHeader* h, const std::string& m) {
  const size_t n = std::min(m.size(), sizeof h->message - 1);
  memcpy(h->message, m.data(), n);
  h->message[n] = 0;
}

[[noreturn]] void refuse(ChannelHeader* h, int bell, const std::string& m) {
  set_message(h, m);
  __atomic_store_n(&h->state, uint32_t(kRefused), __ATOMIC_RELEASE);
  const uint64_t one = 1;
  (void)!write(bell, &one, sizeof one);
  _exit(2);
}

void fail_running(Fetcher& f, const std::string& m) {
  if (f.failed.exchange(true)) return;
  set_message(f.h, m);
  f.ch.set_state(kBroken);
  ring_bell(f);
  _exit(3);
}

bool write_view(int fd, const uint8_t* p, uint64_t n, uint64_t at) {
  while (n) {
    const ssize_t w = pwrite(fd, p, n, off_t(at));
    if (w <= 0) return false;
    p += w;
    n -= uint64_t(w);
    at += uint64_t(w);
  }
  return true;
}

bool block_ok(const Fetcher& f, uint64_t b, const uint8_t* data) {
  return !f.sum_known[b] || snap::checksum(data, f.block_size) == f.sums[b];
}

// Blocks [first, first + n) into the view: from the cache where ready and good, else fetched (and
// stored in the cache). Only called for blocks this worker marked in flight.
void bring(Fetcher& f, ObjectClient& client, uint64_t first, uint64_t n, std::vector<uint8_t>& buf) {
  const uint64_t bs = f.block_size;
  buf.resize(n * bs);
  auto land = [&](uint64_t a, uint64_t k, const uint8_t* data) {
    if (!write_view(f.view_fd, data, k * bs, f.data_offset + a * bs)) fail_running(f, "cannot write into the view");
    f.ch.set_landed(a, k);
    f.landed_count += k;
    ring_bell(f);
  };
  auto fetch = [&](uint64_t a, uint64_t k, uint8_t* dst) {
    Response r = client.get(f.data_offset + a * bs, k * bs, dst, f.etag);
    __atomic_fetch_add(&f.h->requests, 1, __ATOMIC_RELAXED);
    if (!r.ok) {
      if (r.http == 412) {
        Response now = ObjectClient(client).stat();
        fail_running(f, "object replaced during the restore (ETag " + f.etag + ", now " +
                            (now.ok ? now.etag : std::string("unknown")) + ")");
      }
      fail_running(f, r.error);
    }
    __atomic_fetch_add(&f.h->bytes_fetched, k * bs, __ATOMIC_RELAXED);
    __atomic_fetch_add(&f.h->blocks_fetched, k, __ATOMIC_RELAXED);
  };
  if (!f.cache.usable()) {
    fetch(first, n, buf.data());
    land(first, n, buf.data());
    return;
  }
  // Through the cache: runs of ready blocks are copied, runs of missing ones claimed and fetched;
  // blocks another fetcher holds are waited for afterwards.
  std::vector<uint64_t> theirs;
  uint64_t b = first;
  const uint64_t end = first + n;
  while (b < end) {
    uint64_t e = b + 1;
    const bool ready = f.cache.ready(b);
    while (e < end && f.cache.ready(e) == ready) e++;
    uint8_t* dst = buf.data() + (b - first) * bs;
    if (ready) {
      if (f.cache.read(b, e - b, dst)) {
        uint64_t good = 0;
        for (uint64_t i = b; i < e; i++) {
          if (block_ok(f, i, dst + (i - b) * bs)) {
            good++;
          } else {
            f.cache.forget(i);
            theirs.push_back(i);  // fetched again below
          }
        }
        __atomic_fetch_add(&f.h->blocks_cached, good, __ATOMIC_RELAXED);
        // Land the good ones run by run.
        uint64_t s = b;
        for (uint64_t i = b; i <= e; i++) {
          if (i == e || !f.cache.ready(i)) {
            if (i > s) land(s, i - s, buf.data() + (s - first) * bs);
            s = i + 1;
          }
        }
      } else {
        for (uint64_t i = b; i < e; i++) theirs.push_back(i);
      }
      b = e;
      continue;
    }
    if (f.cache.try_claim(b, e - b)) {
      // Someone may have finished them between the look and the claim.
      bool all_missing = true;
      for (uint64_t i = b; i < e; i++) all_missing &= !f.cache.ready(i);
      if (!all_missing) {
        f.cache.release(b, e - b);
        for (uint64_t i = b; i < e; i++) theirs.push_back(i);
      } else {
        fetch(b, e - b, dst);
        f.cache.store(b, e - b, dst);
        land(b, e - b, dst);
      }
    } else {
      // Block by block: those free now are ours, the others another fetcher's.
      for (uint64_t i = b; i < e; i++) {
        uint8_t* one = buf.data() + (i - first) * bs;
        if (f.cache.try_claim(i, 1)) {
          if (f.cache.ready(i)) {
            f.cache.release(i, 1);
            theirs.push_back(i);
            continue;
          }
          fetch(i, 1, one);
          f.cache.store(i, 1, one);
          land(i, 1, one);
        } else {
          theirs.push_back(i);
        }
      }
    }
    b = e;
  }
  for (uint64_t i : theirs) {
    uint8_t* one = buf.data() + (i - first) * bs;
    f.cache.claim_wait(i);  // until its owner is done (or dead)
    if (f.cache.ready(i) && f.cache.read(i, 1, one) && block_ok(f, i, one)) {
      f.cache.release(i, 1);
      __atomic_fetch_add(&f.h->blocks_cached, 1, __ATOMIC_RELAXED);
    } else {
      fetch(i, 1, one);
      f.cache.store(i, 1, one);
    }
    land(i, 1, one);
  }
}

// The next job: urgent first, else a sweep chunk. Marks its blocks in flight. False: none now.
bool next_job(Fetcher& f, uint64_t* first, uint64_t* n, bool sweep) {
  auto claim_run = [&](uint64_t a, uint64_t end) -> bool {
    // The first run of blocks in [a, end) neither landed nor in flight.
    uint64_t b = a;
    while (b < end && (f.inflight[b] || f.ch.landed(b))) b++;
    if (b >= end) return false;
    uint64_t e = b;
    while (e < end && e - b < kMaxRequestBlocks && !f.inflight[e] && !f.ch.landed(e)) e++;
    for (uint64_t i = b; i < e; i++) f.inflight[i] = 1;
    *first = b;
    *n = e - b;
    return true;
  };
  while (!f.urgent.empty()) {
    RingEntry& r = f.urgent.front();
    const uint64_t end = std::min(r.first_block + r.blocks, f.blocks);
    if (r.first_block < end && claim_run(r.first_block, end)) {
      const uint64_t done_to = *first + *n;
      r.blocks = end > done_to ? end - done_to : 0;
      r.first_block = done_to;
      if (!r.blocks) f.urgent.pop_front();
      return true;
    }
    f.urgent.pop_front();
  }
  if (!f.prefetch_all || !sweep) return false;
  while (f.sweep_cursor < f.blocks) {
    const uint64_t end = std::min(f.sweep_cursor + kSweepBlocks, f.blocks);
    if (claim_run(f.sweep_cursor, end)) {
      f.sweep_cursor = *first + *n;
      return true;
    }
    f.sweep_cursor = end;
  }
  return false;
}

// Worker 0 takes only what faults wait for: a fault never queues behind a 4 MiB sweep chunk.
void worker(Fetcher& f, const ObjectClient& proto, int index) {
  ObjectClient client(proto);
  std::vector<uint8_t> buf;
  for (;;) {
    uint64_t first, n;
    {
      std::unique_lock<std::mutex> g(f.lock);
      while (!next_job(f, &first, &n, index != 0)) {
        if (f.landed_count.load() >= f.blocks) return;
        f.work.wait(g);
      }
    }
    bring(f, client, first, n, buf);
    {
      std::lock_guard<std::mutex> g(f.lock);
      for (uint64_t i = first; i < first + n; i++) f.inflight[i] = 0;
    }
    f.work.notify_all();
  }
}

uint64_t count_landed(const Fetcher& f) {
  uint64_t c = 0;
  for (uint64_t w = 0; w < (f.blocks + 63) / 64; w++) c += uint64_t(__builtin_popcountll(f.ch.landed_word(w)));
  return c;
}

std::string cache_dir() {
  if (const char* d = getenv("UFFDLAZY_CACHE_DIR"); d && *d) return d;
  if (const char* x = getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/uffdlazy";
  if (const char* home = getenv("HOME"); home && *home) return std::string(home) + "/.cache/uffdlazy";
  return "";
}

// "4G", "512M", "0" (no cache).
uint64_t cache_max() {
  const char* v = getenv("UFFDLAZY_CACHE_MAX");
  if (!v || !*v) return 4ull << 30;
  char* end = nullptr;
  uint64_t n = strtoull(v, &end, 10);
  switch (end && *end ? *end : 0) {
    case 'K': case 'k': n <<= 10; break;
    case 'M': case 'm': n <<= 20; break;
    case 'G': case 'g': n <<= 30; break;
    case 'T': case 't': n <<= 40; break;
    default: break;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int view = -1, control = -1, bell = -1;
  long parent = -1;
  const char* location = nullptr;
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--view=", 7)) view = atoi(argv[i] + 7);
    else if (!strncmp(argv[i], "--control=", 10)) control = atoi(argv[i] + 10);
    else if (!strncmp(argv[i], "--bell=", 7)) bell = atoi(argv[i] + 7);
    else if (!strncmp(argv[i], "--parent=", 9)) parent = atol(argv[i] + 9);
    else location = argv[i];
  }
  if (view < 0 || control < 0 || bell < 0 || parent <= 0 || !location) {
    fprintf(stderr, "uffdlazy-fetch: started by libuffdlazy.so for a remote restore, not by hand\n");
    return 2;
  }
  // Never under the shim (it would start a fetcher of its own).
  if (const char* pre = getenv("LD_PRELOAD"); pre && strstr(pre, "uffdlazy")) {
    fprintf(stderr, "uffdlazy-fetch: must not run under libuffdlazy.so\n");
    return 2;
  }
  // The fetcher follows the program (it is not the program's child: see fetcher_launch.cpp): a
  // pidfd of it, polled between requests. Gone already: nothing to do.
  const int parent_fd = int(syscall(SYS_pidfd_open, parent, 0));
  if (parent_fd < 0) return 0;
  void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, control, 0);
  if (m == MAP_FAILED) return 2;
  ChannelHeader* h = static_cast<ChannelHeader*>(m);
  h->fetcher_pid = uint32_t(getpid());

  Location loc;
  std::string err;
  if (!parse_location(location, &loc, &err)) refuse(h, bell, err);
  ObjectClient client;
  if (!client.init(loc, &err)) refuse(h, bell, err);
  FetchedObject obj;
  obj.fd = view;
  if (!fetch_snapshot_metadata(client, loc.digest, &obj, &err)) {
    obj.fd = -1;
    refuse(h, bell, err);
  }
  obj.fd = -1;  // the view stays open: it is the shim's

  Fetcher f;
  f.view_fd = view;
  f.bell_fd = bell;
  f.etag = obj.etag;
  f.location = loc.text;
  const char* pf = getenv("UFFDLAZY_PREFETCH");
  f.prefetch_all = !pf || !*pf || !strcmp(pf, "all");
  snap::SnapshotReader reader;
  const std::string self = "/proc/self/fd/" + std::to_string(view);
  std::string key;
  if (reader.open(self.c_str(), false).ok()) {
    f.data_offset = reader.data_offset();
    f.block_size = reader.page_size();
    f.blocks = reader.data_length() / f.block_size;
    f.sums.assign(f.blocks, 0);
    f.sum_known.assign(f.blocks, 0);
    for (uint64_t r = 0; r < reader.region_count(); r++) {
      const snap::RegionRecord& rec = reader.region(r);
      for (uint64_t k = 0; k < rec.run_count; k++) {
        const snap::RunRecord& run = reader.run(r, k);
        for (uint64_t i = 0; i < run.pages; i++) {
          const snap::PageEntry& e = reader.entry_at(run.entry + i);
          const snap::PageKind kind = snap::entry_kind(e);
          if (kind != snap::PageKind::kData || snap::entry_depth(e) != 0) continue;
          const uint64_t b = (snap::entry_offset(e) - f.data_offset) / f.block_size;
          if (b < f.blocks) {
            f.sums[b] = e.checksum;
            f.sum_known[b] = 1;
          }
        }
      }
    }
    uint8_t digest[32];
    if (reader.compute_index_digest(digest)) {
      char hex[65];
      snap::sha256_hex(digest, hex);
      key = hex;
    }
  }
  // Not a snapshot, or a damaged one: no blocks; the shim's reader says what is wrong.
  if (key.empty()) key = sha256_hex_of((loc.text + "\n" + obj.etag).data(), loc.text.size() + 1 + obj.etag.size());

  const uint64_t size = control_size_for(f.blocks);
  if (ftruncate(control, off_t(size)) != 0) refuse(h, bell, std::string("cannot size the control block: ") + strerror(errno));
  void* full = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, control, 0);
  if (full == MAP_FAILED) refuse(h, bell, std::string("cannot map the control block: ") + strerror(errno));
  munmap(m, 4096);
  h = static_cast<ChannelHeader*>(full);
  h->object_size = obj.size;
  h->data_offset = f.data_offset;
  h->data_length = f.blocks * f.block_size;
  h->block_size = f.block_size;
  h->blocks = f.blocks;
  h->control_size = size;
  h->requests = obj.requests;
  h->bytes_fetched = obj.bytes_fetched;
  f.h = h;
  f.ch.attach(full);
  f.inflight.assign(f.blocks, 0);

  const uint64_t max = cache_max();
  const std::string dir = cache_dir();
  if (max > 0 && !dir.empty() && f.blocks) {
    std::string cache_err;
    f.cache.open(dir, key, f.blocks, f.block_size, max, &cache_err);  // without it: fetch everything
  }
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  h->ready_ns = uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
  f.ch.set_state(kReady);
  ring_bell(f);
  if (!f.blocks) return 0;

  std::vector<std::thread> workers;
  for (int i = 0; i < kWorkers; i++) workers.emplace_back(worker, std::ref(f), std::cref(client), i);
  // The ring: what waiting threads need, ahead of everything else.
  uint32_t seen = __atomic_load_n(&h->ring_futex, __ATOMIC_ACQUIRE);
  for (;;) {
    RingEntry e;
    bool any = false;
    {
      std::lock_guard<std::mutex> g(f.lock);
      while (f.ch.take(&e)) {
        f.urgent.push_back(e);
        any = true;
      }
    }
    if (any) f.work.notify_all();
    if (count_landed(f) >= f.blocks) break;
    pollfd p = {parent_fd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) _exit(0);  // the program ended
    const timespec ts = {0, 200 * 1000 * 1000};
    syscall(SYS_futex, &h->ring_futex, FUTEX_WAIT, seen, &ts, nullptr, 0);
    seen = __atomic_load_n(&h->ring_futex, __ATOMIC_ACQUIRE);
  }
  f.landed_count = f.blocks;
  f.work.notify_all();
  for (auto& t : workers) t.join();
  return 0;
}
