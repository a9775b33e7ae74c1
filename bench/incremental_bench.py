#!/usr/bin/env python3
"""A second checkpoint of a resumed process that changed 1% of its memory: incremental against full.

bench/targets/resume_bench_target builds MB MiB of state, is checkpointed in its read of stdin
(image A), is resumed with its next checkpoint going to B, writes PERMILLE/1000 of its pages at
random, raises the trigger again (image B is written, the process ends), and B is resumed to the
end, which must print the checksum of an uninterrupted run. Done RUNS times each, interleaved:
  * full: A taken without --incremental, so B holds every page;
  * incremental: A taken with --incremental, so B holds only what changed since A (and the pages
    never written since, left in A, are referred to).
Reported: B's size and the time the checkpoint line gives ("in N ms": from the trigger to the
image renamed into place), medians [min, max], and the ratios the goal is stated in (issue 15:
<= 3% of the bytes, <= 1/10 of the time).

  bench/incremental_bench.py --cli build/bin/uffdlazy --target build/bin/resume_bench_target \\
      [--mb 512] [--permille 10] [--runs 5] [--markdown]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile


def fmt(values, digits=1):
    v = sorted(values)
    return "%.*f [%.*f, %.*f]" % (digits, statistics.median(v), digits, v[0], digits, v[-1])


def checksum(err):
    m = re.search(r"^done \d+ checksum ([0-9a-f]+)$", err, re.M)
    return m.group(1) if m else None


def written(err, path):
    m = re.search(r"checkpoint " + re.escape(path) + r" written: (.*), in (\d+) ms$", err, re.M)
    if not m:
        raise SystemExit("incremental_bench: no checkpoint line for %s:\n%s" % (path, err))
    return m.group(1), int(m.group(2))


def run(argv, stdin):
    p = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
    return p.returncode, p.stderr.decode(errors="replace")


def once(cli, program, workdir, incremental, reference):
    a = os.path.join(workdir, "a.img")
    b = os.path.join(workdir, "b.img")
    for f in (a, b):
        if os.path.exists(f):
            os.unlink(f)
    # stdin stays open and empty while the program is checkpointed in its read.
    p = subprocess.Popen([cli, "checkpoint"] + (["--incremental"] if incremental else []) + ["-o", a, "--"] +
                         program, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode(errors="replace")
    p.wait(timeout=900)
    p.stdin.close()
    if p.returncode != 0 or not os.path.exists(a):
        raise SystemExit("incremental_bench: first checkpoint failed (%d):\n%s" % (p.returncode, err))
    # "go" ends the first wait; stdin then stays open (the second wait is where B is taken).
    p = subprocess.Popen([cli, "resume", a, "--checkpoint-to", b], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p.stdin.write(b"go\n")
    p.stdin.flush()
    err = p.stderr.read().decode(errors="replace")
    rc = p.wait(timeout=900)
    p.stdin.close()
    if rc != 0 or not os.path.exists(b):
        raise SystemExit("incremental_bench: second checkpoint failed (%d):\n%s" % (rc, err))
    line, ms = written(err, b)
    rc, err = run([cli, "resume", b], b"go\n")
    if rc != 0 or checksum(err) != reference:
        raise SystemExit("incremental_bench: resuming the second image gave %s (exit %d), not %s:\n%s" %
                         (checksum(err), rc, reference, err))
    return os.path.getsize(a), os.path.getsize(b), ms, line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--permille", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    o = ap.parse_args()
    base = [o.target, "--mb", str(o.mb), "--touch-permille", str(o.permille)]
    # The uninterrupted run's checksum (no shim: the trigger signal would end it, so no --checkpoint).
    rc, err = run(base, b"go\n")
    reference = checksum(err)
    if rc != 0 or not reference:
        raise SystemExit("incremental_bench: the reference run failed (%d):\n%s" % (rc, err))
    program = base + ["--checkpoint", "--checkpoint-again"]
    res = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="uffdlazy-incbench-") as workdir:
        for _ in range(o.runs):
            for incremental in (False, True):
                res[incremental].append(once(o.cli, program, workdir, incremental, reference))
    full, inc = res[False], res[True]
    mib = lambda rows, i: [r[i] / 1048576 for r in rows]
    size_ratio = statistics.median([r[1] for r in inc]) / statistics.median([r[1] for r in full])
    time_ratio = statistics.median([r[2] for r in inc]) / max(1, statistics.median([r[2] for r in full]))
    load = open("/proc/loadavg").read().split()[:3]
    rows = [
        ("full (first image without --incremental)", full),
        ("incremental (--incremental)", inc),
    ]
    if o.markdown:
        print("`resume_bench_target --mb %d --touch-permille %d`: checkpointed after the warm-up (image A), "
              "resumed with `--checkpoint-to B`, %.1f%% of its pages written at random, checkpointed again "
              "(B); B resumed to the end prints the checksum of an uninterrupted run (checked every run). "
              "Median [min, max] of %d runs, interleaved; load average %s." %
              (o.mb, o.permille, o.permille / 10, o.runs, " ".join(load)))
        print()
        print("| second checkpoint | B size (MiB) | B written in (ms) | first image A (MiB) |")
        print("|---|---:|---:|---:|")
        for name, r in rows:
            print("| %s | %s | %s | %s |" % (name, fmt(mib(r, 1)), fmt([x[2] for x in r], 0), fmt(mib(r, 0))))
        print()
        print("Ratios of medians, incremental / full: size %.4f (goal <= 0.03: %s), time %.3f (goal <= 0.1: %s)." %
              (size_ratio, "met" if size_ratio <= 0.03 else "NOT met", time_ratio,
               "met" if time_ratio <= 0.1 else "NOT met"))
        print()
        print("Incremental B, last run: `%s`." % inc[-1][3])
    else:
        for name, r in rows:
            print("%-45s B %s MiB, written in %s ms, A %s MiB" % (name, fmt(mib(r, 1)), fmt([x[2] for x in r], 0),
                                                                    fmt(mib(r, 0))))
        print("incremental/full: size %.4f, time %.3f (load %s)" % (size_ratio, time_ratio, " ".join(load)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
