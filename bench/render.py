#!/usr/bin/env python3
"""Writes bench/RESULTS.md from the measurements scripts/bench.sh leaves in one directory.

    bench/render.py WORKDIR > bench/RESULTS.md

WORKDIR holds machine.env, restore/ (restore_scan runs timed by wall_time), gbench.json (Google
Benchmark) and felt/ (felt_latency runs). A part that is missing is reported as not measured.

The prose of the report is written here by hand, in the TEXT_* constants: it says what each table
measures and how to read it. The code only fills in numbers and states, for each target, whether
the numbers of this run meet it.
"""
import glob
import json
import os
import re
import statistics
import sys

# ---- hand-written prose ----------------------------------------------------------------------------

TEXT_TITLE = "# Benchmarks"

TEXT_INTRO = """\
Written by `scripts/bench.sh` through `bench/render.py`; do not edit by hand. Everything below was
measured in one run of the script on one machine (see *Machine* at the end). The machine is a
shared 2-vCPU VM whose load changes from minute to minute, so absolute times move between runs:
compare the ratios inside this file, never times across files."""

TEXT_GOALS = """\
## Goals

The targets of the restore-speed work, each judged on the numbers of this run (medians of the
runs of each configuration). *Eager* is the same program `read(2)`-ing a raw image of the region
into it; *blocking faults* are the fault messages a thread waited for (`requests=` in the shim's
summary line)."""

TEXT_RESTORE = """\
## Restoring a 512 MiB region

`bench/targets/restore_scan` maps one anonymous region and reads pages of it, checking the content
of every page it reads (a run that finds a wrong page fails, and the table says so). The region's
content comes from:

| method | what happens |
|---|---|
| eager | `read(2)` of a raw image of the region (in the page cache) into the region, then the reads |
| mmap | the image is mapped (`MAP_PRIVATE`) instead of the region; the reads fault its pages in from the page cache, 16 at a time |
| zero | no content at all: the kernel's demand-zero fill (what a cold start without data costs to touch) |
| none | `uffdlazy restore --prefetch none --readahead 1`: one page per fault, nothing else (the shim before this work) |
| readahead-1t | `--prefetch none` with `UFFDLAZY_COPY_THREADS=1`: each fault brings in a run of owed pages, growing while the reads are sequential; the monitor copies alone |
| readahead | `--prefetch none`: the same, with the copy helper copying half of each long run (the default) |
| all-1t | readahead, and the monitor fills everything else in the background, copying alone (`UFFDLAZY_COPY_THREADS=1`) |
| all | the default: the same with the copy helper |
| ws | `--prefetch ws --ws FILE`: the working set recorded by an earlier run of the same pattern is installed while the region is mapped, then nothing more |

The access patterns: every page in address order (*seq 100%*), every page in a fixed random order
(*random 100%*), and the first 1% of that order (*random 1%*). **Wall** is the whole process, from
fork to exit, as `bench/targets/wall_time` measured it: loading the shim and the snapshot, mapping,
reading, and exiting (which unmaps the memory) all count. *Blocking faults* is `requests=`;
*readahead* and *prefetched* are the pages the shim installed beyond a faulting page and in the
background. The snapshot file and the image are in the page cache throughout (warm cache)."""

TEXT_RESTORE_NOTES = """\
How to read it: *eager* pays for the whole region before the first read, whatever the program then
needs; *zero* is the floor for a program that reads nothing it has not written. *none* pays one
round trip to the monitor per page. *readahead* turns a sequential scan into a few hundred round
trips, each bringing a window of pages with one `UFFDIO_COPY`; on random reads its windows shrink
to one page, so it costs what *none* costs. *all* keeps the monitor busy filling the region while
the program runs, so a program that reads much of its memory finds most of it in place; a program
that reads little pays for sharing the CPUs with that fill. *ws* installs exactly what the recorded
run read, before the program reads it: the program never waits on a fault for those pages."""

TEXT_FLOOR = """\
### What the kernel's copy costs

How far a lazy restore can get ahead of an eager load here: `restore_scan floor` fills the region
with `UFFDIO_COPY` from the mapped image, 256 pages per call, with no fault and no monitor at all
(checking each page's XXH3 first, or not), from one thread and from two taking runs in turn (what
the monitor and its copy helper do), and beside it fills the region by `read(2)` of the image; all
timed inside the process, from mapping the region to the last page in place. Everything the shim
adds (faults, round trips, the snapshot index) comes on top of the copy column, and the
whole-process times above add the same start-up and exit (tearing down 512 MiB) to every method.
With two vCPUs, the second copying thread only helps while the program itself waits: a program
that reads as fast as it can shares the CPUs with both."""

TEXT_IDLE = """\
### The monitor once everything is in place

`restore_scan` reads 1% of the region under the default configuration (the background fill
installs everything), waits until every page of the region is present (`mincore`, which touches
nothing), then sleeps one second while it measures the CPU time of the shim's threads, the
monitor and the copy helper (`/proc/self/task/*/schedstat`). The monitor then blocks in `ppoll`
until the kernel has something for it, and the copy helper in a futex wait until the monitor hands
it a copy; the background fill never polls for work."""

TEXT_SINGLE = """\
## The single-page fault: the shim's monitor beside a minimal handler

One thread touching fresh pages in order, one page installed per fault, zero-filled: the felt
latency of one access as the faulting thread timed it. *Minimal* is the smallest userfaultfd
handler there is, written into the benchmark: a thread blocked in `poll(2)` that reads one message
and answers it with one ioctl, with no region table, no accounting and no spinning. *Shim* is the
core `Monitor` as the shim configures it (`UFFDLAZY_SPIN_US=50`, latency accounting on,
`UFFDLAZY_FAULT_AROUND=1` so that each fault is one page), in-process. Both in the same three
placements, in the same run. The kernel's own demand-zero fault is there for scale: on this VM a
thread round trip alone costs several times more, which is why the old "4x the kernel" target was
retired."""

TEXT_SPIN = """\
The monitor spins 50 us after answering a fault before it sleeps, and yields the CPU between polls
(`sched_yield`), so that a faulting thread woken on the monitor's own CPU runs at once instead of
waiting for the spin to end. Without that yield the same-CPU p99 was about the spin time (57 us
for a 6 us median in an earlier run)."""

TEXT_FAULTS = """\
## Fault costs in detail

In-process benchmarks (`bench/fault_bench*.cpp`, Google Benchmark, one process): the kernel's
demand-zero fault, the core `Monitor` answering the same touch with no source (`zero`, one page
per fault; `zero-fa16`, 16 pages per fault), from memory (`copy-mem`), and from a real snapshot
file (`snapshot`, `snapshot-verify` with checksums), in three placements of the monitor: unpinned
(what a program gets), cross-cpu (monitor on CPU 0, faulting thread on CPU 1) and same-cpu (both
on CPU 0). *Per page* is the touch loop's time over the pages touched; *felt p50/p99* the latency
of each access as the faulting thread measured it; *reported* what the monitor's own account says
(read of the fault message to the page in place and the thread woken)."""

TEXT_FELT = """\
## Felt vs reported under the real shim

`bench/targets/felt_latency` maps its pages, times each first touch itself and prints
percentiles; it runs under `LD_PRELOAD=libuffdlazy.so UFFDLAZY_FAULT_AROUND=1 UFFDLAZY_REPORT=...`
at spin 50 (the default) and spin 0, in the three placements (`taskset` plus
`UFFDLAZY_MONITOR_CPU`), and without the shim. *Reported* is the JSON report's overall latency;
the gap is the part of a fault the report cannot see: the kernel delivering the fault to the
monitor and scheduling the faulting thread again."""

TEXT_EVENTS = """\
## Events

One call on a populated 64-page range: the calling thread waits until the monitor has read the
event, so a registered munmap, madvise or mremap pays a round trip on top of the call (a move pays
two: REMAP, then UNMAP of the old range)."""

TEXT_OVERHEAD = """\
## Measurement overhead

What keeping the latency account adds to each fault the monitor serves: recording it (histograms,
timeline, totals and the trace append) plus the two clock reads around it."""

# ---- reading ---------------------------------------------------------------------------------------


def read_env(path):
    env = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def kv_line(line):
    out = {}
    for f in line.split():
        if "=" in f:
            k, v = f.split("=", 1)
            out[k] = v
    return out


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ms(ns):
    if ns is None:
        return "-"
    v = ns / 1e6
    return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def us(ns):
    if ns is None:
        return "-"
    return f"{ns / 1000:.2f} us" if ns < 100_000 else f"{ns / 1000:.0f} us"


def ratio(a, b, digits=2):
    if a is None or not b:
        return "-"
    return f"{a / b:.{digits}f}x"


def count(v):
    return "-" if v is None else f"{int(v)}"


PATTERNS = [("seq-100", "seq 100%"), ("random-100", "random 100%"), ("random-1", "random 1%")]
METHODS = ["eager", "mmap", "zero", "none", "readahead-1t", "readahead", "all-1t", "all", "ws"]


def restore_runs(rdir, tag, method):
    """The runs of one configuration: wall times, statuses, and what the program and shim said."""
    base = os.path.join(rdir, f"{tag}.{method}")
    times = [kv_line(l) for l in open(base + ".time")] if os.path.exists(base + ".time") else []
    outs = [kv_line(l) for l in open(base + ".out") if "pages=" in l] if os.path.exists(base + ".out") else []
    errs = open(base + ".err").read() if os.path.exists(base + ".err") else ""
    stats = [kv_line(l) for l in errs.splitlines() if l.startswith("uffdlazy: pid=")]
    problems = [l for l in errs.splitlines() if l.startswith("uffdlazy:") and not re.match(
        r"uffdlazy: (pid=|restore )", l)]
    if not times:
        return None
    walls = [int(t["wall_ns"]) for t in times if t.get("status") == "0"]
    r = {
        "runs": len(times),
        "ok_runs": len(walls),
        "wall": med(walls),
        "wall_min": min(walls) if walls else None,
        "bad": sum(int(o.get("bad", 0)) for o in outs),
        "touched": int(outs[0]["touched"]) if outs else None,
        "requests": med([int(s["requests"]) for s in stats if "requests" in s]),
        "prefetched": med([int(s["prefetched"]) for s in stats if "prefetched" in s]),
        "readahead": med([int(s["readahead"]) for s in stats if "readahead" in s]),
        "problems": problems[:3],
    }
    return r


# ---- rendering -------------------------------------------------------------------------------------


def render_restore(work, env, goals):
    rdir = os.path.join(work, "restore")
    if not os.path.isdir(rdir) or not glob.glob(os.path.join(rdir, "*.time")):
        print("## Restoring a 512 MiB region\n\nNot measured in this run.\n")
        return {}
    data = {(tag, m): restore_runs(rdir, tag, m) for tag, _ in PATTERNS for m in METHODS}
    print(TEXT_RESTORE.replace("512 MiB", f"{env.get('restore_mib', '512')} MiB"))
    print()
    print(f"Medians of {env.get('restore_runs', '?')} runs of each configuration, interleaved.")
    print()
    print("| access | method | wall (median) | wall (best) | vs eager | blocking faults | readahead | prefetched | pages checked | wrong pages |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for tag, label in PATTERNS:
        eager = (data.get((tag, "eager")) or {}).get("wall")
        for m in METHODS:
            r = data.get((tag, m))
            if not r:
                continue
            lazy = m in ("none", "readahead-1t", "readahead", "all-1t", "all", "ws")
            failed = "" if r["ok_runs"] == r["runs"] else f" ({r['runs'] - r['ok_runs']} of {r['runs']} runs failed)"
            print(f"| {label} | {m}{failed} | {ms(r['wall'])} | {ms(r['wall_min'])} | {ratio(r['wall'], eager)} | "
                  f"{count(r['requests']) if lazy else '-'} | {count(r['readahead']) if lazy else '-'} | "
                  f"{count(r['prefetched']) if lazy else '-'} | {count(r['touched'])} | {r['bad']} |")
    print()
    noverify = restore_runs(rdir, "seq-100", "readahead-noverify")
    ra = data.get(("seq-100", "readahead"))
    if noverify and ra:
        eager = (data.get(("seq-100", "eager")) or {}).get("wall")
        print(f"Checksums: the sequential scan with readahead alone took {ms(ra['wall'])} with every page checked "
              f"(`--verify page`, the default) and {ms(noverify['wall'])} with `--verify none` "
              f"({ratio(noverify['wall'], eager)} of eager).")
        print()
    print(TEXT_RESTORE_NOTES)
    print()
    problems = [f"{tag}.{m}: {p}" for (tag, m), r in data.items() if r for p in r["problems"]]
    if problems:
        print("Lines the shim printed besides its account: " + "; ".join(problems[:6]))
        print()
    # Goals.
    def wall(tag, m):
        return (data.get((tag, m)) or {}).get("wall")

    def req(tag, m):
        return (data.get((tag, m)) or {}).get("requests")

    eager_seq, eager_rand, eager_1 = wall("seq-100", "eager"), wall("random-100", "eager"), wall("random-1", "eager")
    goals.append(("100% sequential, readahead only (`--prefetch none`)", "<= 0.50 of eager",
                  ratio(wall("seq-100", "readahead"), eager_seq), wall("seq-100", "readahead"), eager_seq, 0.5))
    goals.append(("100% random, all (the default)", "<= 0.60 of eager",
                  ratio(wall("random-100", "all"), eager_rand), wall("random-100", "all"), eager_rand, 0.6))
    goals.append(("1% random, replaying its working set", "<= 0.02 (1/50) of eager",
                  ratio(wall("random-1", "ws"), eager_1, 3), wall("random-1", "ws"), eager_1, 0.02))
    r_ws, r_ra, r_none = req("random-1", "ws"), req("random-1", "readahead"), req("random-1", "none")
    if r_ws is not None and r_ra:
        cut = 1 - r_ws / r_ra
        goals.append(("1% random: blocking faults with the working set vs without (readahead)",
                      ">= 90% fewer", f"{cut * 100:.1f}% fewer ({int(r_ws)} vs {int(r_ra)})", cut, 1, "fewer"))
    floor = []
    if os.path.exists(os.path.join(rdir, "floor.out")):
        floor = [kv_line(l) for l in open(os.path.join(rdir, "floor.out")) if "copy_ms=" in l]
    if floor:
        plain = [f for f in floor if f.get("hash") == "0" and f.get("threads", "1") == "1"]
        hashed = [f for f in floor if f.get("hash") == "1" and f.get("threads", "1") == "1"]
        hashed2 = [f for f in floor if f.get("hash") == "1" and f.get("threads") == "2"]
        rd = med([float(f["read_ms"]) for f in floor])
        cp = med([float(f["copy_ms"]) for f in plain])
        ch = med([float(f["copy_ms"]) for f in hashed])
        ch2 = med([float(f["copy_ms"]) for f in hashed2])
        print(TEXT_FLOOR)
        print()
        print("| filling the region | time (median) | vs read(2) |")
        print("|---|---:|---:|")
        print(f"| read(2) of the image | {rd:.1f} ms | 1.00x |")
        if cp is not None:
            print(f"| UFFDIO_COPY, 256 pages per call | {cp:.1f} ms | {cp / rd:.2f}x |")
        if ch is not None:
            print(f"| UFFDIO_COPY after checking each page (XXH3) | {ch:.1f} ms | {ch / rd:.2f}x |")
        if ch2 is not None:
            print(f"| the same from two threads taking runs in turn | {ch2:.1f} ms | {ch2 / rd:.2f}x |")
        bad = sum(int(f.get("bad", 0)) for f in floor)
        print()
        print(f"Pages checked after each fill: {len(floor)} fills, {bad} wrong pages.")
        print()
    # Idle monitor.
    idle = []
    if os.path.exists(os.path.join(rdir, "idle.out")):
        for line in open(os.path.join(rdir, "idle.out")):
            kv = kv_line(line)
            if "monitor_idle_cpu_pct" in kv:
                idle.append((float(kv["monitor_idle_cpu_pct"]), kv.get("resident"), kv.get("resident_ms"),
                             kv.get("pages")))
    if idle:
        print(TEXT_IDLE)
        print()
        print("| run | pages in place | all in place after | shim threads' CPU while idle (1 s) |")
        print("|---:|---:|---:|---:|")
        for i, (pct, res, res_ms, pages) in enumerate(idle, 1):
            print(f"| {i} | {res} of {pages} | {res_ms} ms | {pct:.3f}% |")
        print()
        worst = max(p for p, *_ in idle)
        goals.append(("Idle monitor after the fill", "< 1% CPU", f"{worst:.3f}% (worst of {len(idle)})", worst, 1.0,
                      "below"))
    return data


def gbench_rows(path):
    rows = {}
    if not os.path.exists(path):
        return rows
    data = json.load(open(path))
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            continue
        name = re.sub(r"/(iterations:\d+|repeats:\d+|manual_time|real_time)", "", b["run_name"])
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        r = rows.setdefault(name, {})
        if b.get("run_type") == "iteration" and "time" in r:
            continue
        r["time"] = b["real_time"] * scale
        for k in ("lat_p50_ns", "lat_p99_ns", "rep_p50_ns", "rep_p99_ns", "fault_p50_ns", "fault_p99_ns",
                  "mon_faults_per_page", "events_per_call", "mon_same_cpu"):
            if k in b:
                r[k] = b[k]
    rows["_context"] = data.get("context", {})
    return rows


PLACEMENTS = ("unpinned", "cross-cpu", "same-cpu")


def render_single(rows, goals):
    if not any(n.startswith("fault/minimal/") for n in rows):
        print("## The single-page fault: the shim's monitor beside a minimal handler\n\nNot measured in this run.\n")
        return
    print(TEXT_SINGLE)
    print()
    print("| placement | fault | kernel p50 | minimal p50 | minimal p99 | shim p50 | shim p99 | shim / minimal (p50) | shim p99 / p50 | shim at spin 0: p50 / p99 | on the faulter's CPU: minimal / shim |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    differed = []
    for pl in PLACEMENTS:
        for kind in ("read", "write"):
            k = rows.get(f"fault/kernel/{kind}/seq/1thread", {})
            mn = rows.get(f"fault/minimal/{kind}/seq/1thread/{pl}", {})
            sh = rows.get(f"fault/zero/{kind}/seq/1thread/{pl}/spin50", {})
            s0 = rows.get(f"fault/zero/{kind}/seq/1thread/{pl}/spin0", {})
            ms_, ss_ = mn.get("mon_same_cpu"), sh.get("mon_same_cpu")
            share = lambda v: "-" if v is None else f"{v * 100:.0f}%"
            print(f"| {pl} | {kind} | {us(k.get('lat_p50_ns'))} | {us(mn.get('lat_p50_ns'))} | {us(mn.get('lat_p99_ns'))} | "
                  f"{us(sh.get('lat_p50_ns'))} | {us(sh.get('lat_p99_ns'))} | "
                  f"{ratio(sh.get('lat_p50_ns'), mn.get('lat_p50_ns'))} | {ratio(sh.get('lat_p99_ns'), sh.get('lat_p50_ns'))} | "
                  f"{us(s0.get('lat_p50_ns'))} / {us(s0.get('lat_p99_ns'))} | {share(ms_)} / {share(ss_)} |")
            a, b = sh.get("lat_p50_ns"), mn.get("lat_p50_ns")
            # Unpinned, the scheduler picks the placement run by run: the two are compared only when
            # it picked the same for both (the handler on the faulting thread's CPU most of the time
            # for both, or for neither).
            same_place = pl != "unpinned" or (ms_ is not None and ss_ is not None and (ms_ >= 0.5) == (ss_ >= 0.5))
            if a and b and same_place:
                goals.append((f"Single-page {kind} fault, {pl}: shim p50 vs minimal handler p50", "<= 1.25x",
                              ratio(a, b), a, b, 1.25))
            elif a and b:
                differed.append(f"{kind} ({share(ms_)} vs {share(ss_)})")
            if pl == "same-cpu":
                a, b = sh.get("lat_p99_ns"), sh.get("lat_p50_ns")
                if a and b:
                    goals.append((f"Single-page {kind} fault, same CPU: shim p99 vs its p50", "<= 2x", ratio(a, b), a, b, 2.0))
    print()
    if differed:
        print("Unpinned, the scheduler placed the minimal handler and the shim's monitor differently in this run "
              "(share of iterations on the faulting thread's CPU, minimal vs shim: " + ", ".join(differed) +
              "), so those rows compare a same-CPU round trip with a cross-CPU one and are left out of the goals; "
              "the pinned rows compare like with like.")
        print()
    print()
    print(TEXT_SPIN)
    print()


def fault_table(rows, names):
    print("| case | per page | felt p50 | felt p99 | reported p50 | reported p99 | monitor on faulter's CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in names:
        r = rows.get(n)
        if not r:
            continue
        same = r.get("mon_same_cpu")
        print(f"| `{n[len('fault/'):]}` | {us(r.get('time'))} | {us(r.get('lat_p50_ns'))} | {us(r.get('lat_p99_ns'))} | "
              f"{us(r.get('rep_p50_ns'))} | {us(r.get('rep_p99_ns'))} | {'-' if same is None else f'{same * 100:.0f}%'} |")
    print()


def render_faults(rows):
    names = [n for n in rows if n.startswith("fault/")]
    if not names:
        print("## Fault costs in detail\n\nNot measured in this run.\n")
        return
    print(TEXT_FAULTS)
    print()
    print("### Single-page faults, the kernel and the shim's monitor")
    print()
    fault_table(rows, [n for n in names if n.startswith(("fault/present/", "fault/kernel/", "fault/zero/", "fault/minimal/"))
                       and "/2threads" not in n])
    inst = [(n, rows[n]) for n in ("install/zeropage", "install/copy-zero") if n in rows]
    if inst:
        print("The ioctl alone, issued with no fault pending (no waiter, no thread switch), one page per call:")
        print()
        print("| ioctl | per page | p50 | p99 |")
        print("|---|---:|---:|---:|")
        for n, r in inst:
            print(f"| `{n}` | {us(r.get('time'))} | {us(r.get('lat_p50_ns'))} | {us(r.get('lat_p99_ns'))} |")
        print()
    fa = [n for n in names if n.startswith("fault/zero-fa")]
    if fa:
        print("### Fault-around 16 (zero-filled regions), sequential")
        print()
        print("One touch in 16 faults and installs 16 pages; *per page* is the amortised cost, *faulting touches* the "
              "touches that waited for a round trip.")
        print()
        print("| case | per page | faulting touches p50 | faulting touches p99 | monitor faults per page |")
        print("|---|---:|---:|---:|---:|")
        for n in fa:
            r = rows[n]
            per = r.get("mon_faults_per_page")
            print(f"| `{n[len('fault/'):]}` | {us(r.get('time'))} | {us(r.get('fault_p50_ns'))} | {us(r.get('fault_p99_ns'))} | "
                  f"{'-' if per is None else f'{per:.4f}'} |")
        print()
    sn = [n for n in names if n.startswith(("fault/snapshot", "fault/copy-mem/"))]
    if sn:
        print("### Pages with data: from memory and from a snapshot file (one page per fault, spin 50)")
        print()
        fault_table(rows, sn)
    two = [n for n in names if "/2threads" in n]
    if two:
        print("### Two faulting threads (write, sequential, one page per fault)")
        print()
        fault_table(rows, two)
    ev = [n for n in rows if n.startswith("event/")]
    if ev:
        print(TEXT_EVENTS)
        print()
        print("| call | range | per call | vs unregistered | felt p50 | felt p99 |")
        print("|---|---|---:|---:|---:|---:|")
        for n in ev:
            r = rows[n]
            p = n.split("/")
            b = rows.get(f"event/{p[1]}/unregistered", {})
            print(f"| {p[1]} | {'/'.join(p[2:])} | {us(r.get('time'))} | {ratio(r.get('time'), b.get('time'), 1)} | "
                  f"{us(r.get('lat_p50_ns'))} | {us(r.get('lat_p99_ns'))} |")
        print()
    obs, clk = rows.get("BM_ObserverFault", {}).get("time"), rows.get("BM_ClockRead", {}).get("time")
    if obs and clk:
        print(TEXT_OVERHEAD)
        print()
        print("| item | median |")
        print("|---|---:|")
        print(f"| record one fault | {obs:.1f} ns |")
        print(f"| one clock read | {clk:.1f} ns |")
        print(f"| per fault (record + 2 clock reads) | {obs + 2 * clk:.1f} ns |")
        print()


def render_felt(felt_dir, env):
    outs = glob.glob(os.path.join(felt_dir, "*.out"))
    if not outs:
        print("## Felt vs reported under the real shim\n\nNot measured in this run.\n")
        return
    print(TEXT_FELT)
    print()

    def parse(path):
        res = {}
        for line in open(path):
            kv = kv_line(line)
            if "phase" in kv:
                res[kv["phase"]] = {k: int(v) for k, v in kv.items() if k.endswith("_ns") or k == "pages"}
        return res

    print(f"Medians of {env.get('felt_runs', '?')} runs, {env.get('felt_pages', '?')} pages per phase.")
    print()
    print("| configuration | fault | felt p50 | felt p99 | reported p50 | reported p99 | faults in report = pages |")
    print("|---|---|---:|---:|---:|---:|---|")
    for kind in ("read", "write"):
        runs = [parse(f).get(kind) for f in sorted(glob.glob(os.path.join(felt_dir, "kernel.*.out")))]
        runs = [r for r in runs if r]
        if runs:
            print(f"| kernel (no shim) | {kind} | {us(med([r['p50_ns'] for r in runs]))} | "
                  f"{us(med([r['p99_ns'] for r in runs]))} | - | - | - |")
    for spin in (50, 0):
        for pl in PLACEMENTS:
            for kind in ("read", "write"):
                got = []
                for out in sorted(glob.glob(os.path.join(felt_dir, f"shim-spin{spin}-{pl}-{kind}.*.out"))):
                    f = parse(out).get(kind)
                    try:
                        rep = json.load(open(out[:-4] + ".json"))
                    except (OSError, ValueError):
                        rep = None
                    if f and rep:
                        got.append((f, rep))
                if not got:
                    continue
                ok = all(rep["totals"]["faults"] == f["pages"] for f, rep in got)
                print(f"| shim, spin {spin}, {pl} | {kind} | {us(med([f['p50_ns'] for f, _ in got]))} | "
                      f"{us(med([f['p99_ns'] for f, _ in got]))} | {us(med([r['latency']['p50_ns'] for _, r in got]))} | "
                      f"{us(med([r['latency']['p99_ns'] for _, r in got]))} | {'yes' if ok else 'NO'} |")
    print()


def render_goals(goals):
    print(TEXT_GOALS)
    print()
    print("| goal | target | this run | met? |")
    print("|---|---|---:|---|")
    missed = []
    for name, target, shown, a, b, limit in goals:
        if a is None or b is None:
            print(f"| {name} | {target} | not measured | - |")
            continue
        if limit == "fewer":
            met = a >= 0.9
        elif limit == "below":
            met = a < b
        else:
            met = b > 0 and a / b <= limit
        print(f"| {name} | {target} | {shown} | {'yes' if met else '**no**'} |")
        if not met:
            missed.append(name)
    print()
    return missed


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/render.py WORKDIR")
    work = sys.argv[1]
    env = read_env(os.path.join(work, "machine.env"))
    rows = gbench_rows(os.path.join(work, "gbench.json"))

    # The goals table comes first but is filled by the sections: render them into a buffer.
    import io
    goals = []
    body = io.StringIO()
    real_stdout = sys.stdout
    sys.stdout = body
    render_restore(work, env, goals)
    render_single(rows, goals)
    render_faults(rows)
    render_felt(os.path.join(work, "felt"), env)
    sys.stdout = real_stdout

    print(TEXT_TITLE)
    print()
    print(TEXT_INTRO)
    print()
    missed = render_goals(goals)
    if missed:
        print("Missed in this run: " + "; ".join(missed) + ". See *Where the time goes* (docs/snapshots.md, *Restoring fast*) and the "
              "restore table below for the numbers behind each.")
        print()
    sys.stdout.write(body.getvalue())
    ctx = rows.get("_context", {})
    print("## Machine")
    print()
    print(f"- Date: {env.get('date', '?')}, commit {env.get('commit', '?')}"
          + (" (sources modified after it)" if env.get("dirty") == "yes" else "")
          + f"; the script took {env.get('seconds', '?')} s")
    print(f"- Kernel {env.get('kernel', '?')}; {env.get('nproc', '?')} CPUs ({env.get('cpu', '?')}, "
          f"{ctx.get('mhz_per_cpu', '?')} MHz); clocksource {env.get('clocksource', '?')}; THP {env.get('thp', '?')}")
    print(f"- Load average (1/5/15 min): {env.get('load', '?')}")
    print(f"- Google Benchmark: {env.get('reps', '?')} repetitions per case, medians; restore: "
          f"{env.get('restore_runs', '?')} runs per configuration, medians; felt_latency: "
          f"{env.get('felt_runs', '?')} runs per configuration, medians.")


if __name__ == "__main__":
    main()
