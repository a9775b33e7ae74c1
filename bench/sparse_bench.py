#!/usr/bin/env python3
"""Image size and resume time of a process with a large, mostly untouched reservation, against CRIU.

tests/targets/sparse_reservation maps GIB GiB (PROT_NONE or read-write, MAP_NORESERVE), writes
TOUCH pages of it, and waits. Measured, in one run, interleaved, RUNS times each:
  * uffdlazy: `uffdlazy checkpoint` (size of the image), then `uffdlazy resume` from launch to the
    program's first instruction after the resume (its "running" line, CLOCK_MONOTONIC);
  * CRIU, when --criu names a criu binary (needs root): `criu dump` of the same program run without
    the shim (size of the image directory, logs left out), then `criu restore -d` from launch to
    criu's exit, when the restored process runs (it is then told to go on, and must print the same
    checksum).
Prints medians [min, max] and the ratios the goal is stated in (image size, resume time).

  bench/sparse_bench.py --cli build/bin/uffdlazy --target build/targets/sparse_reservation \\
      [--criu /path/to/criu] [--gib 10] [--touch 2] [--prot rw|none] [--runs 7]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def fmt(values, digits=1):
    v = sorted(values)
    return "%.*f [%.*f, %.*f]" % (digits, statistics.median(v), digits, v[0], digits, v[-1])


def ours(cli, program, workdir, runs):
    image = os.path.join(workdir, "sparse.img")
    # stdin stays open and empty while the program is checkpointed in its read.
    p = subprocess.Popen([cli, "checkpoint", "-o", image, "--"] + program + ["--checkpoint"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode()
    p.wait(timeout=600)
    p.stdin.close()
    if p.returncode != 0 or not os.path.exists(image):
        raise SystemExit("sparse_bench: checkpoint failed (%d):\n%s" % (p.returncode, err))
    return image, os.path.getsize(image)


def resume_once(cli, image):
    launch = time.monotonic_ns()
    p = subprocess.Popen([cli, "resume", image], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, err = p.communicate(b"go\n", timeout=600)
    lines = err.decode(errors="replace").splitlines()
    running = [l for l in lines if l.startswith("running ")]
    done = [l for l in lines if l.startswith("done ")]
    if p.returncode != 0 or not running or not done:
        raise SystemExit("sparse_bench: resume failed (%d):\n%s" % (p.returncode, "\n".join(lines)))
    return (int(running[0].split()[1]) - launch) / 1e6, done[0].split()[3]


def criu_dump(criu, program, workdir):
    images = os.path.join(workdir, "criu")
    os.mkdir(images)
    out = os.path.join(workdir, "criu.out")
    err = os.path.join(workdir, "criu.err")
    with open(out, "w") as o, open(err, "w") as e, open(os.devnull) as null:
        p = subprocess.Popen(program + ["--wait-signal"], stdin=null, stdout=o, stderr=e, start_new_session=True)
    for _ in range(3000):
        with open(err) as f:
            if f.read().startswith("ready "):
                break
        time.sleep(0.01)
    with open(err) as f:
        ready = f.read()
    r = subprocess.run([criu, "dump", "-t", str(p.pid), "-D", images, "-o", "dump.log"], capture_output=True)
    p.wait(timeout=60)
    if r.returncode != 0:
        raise SystemExit("sparse_bench: criu dump failed:\n%s" % open(os.path.join(images, "dump.log")).read()[-3000:])
    size = sum(os.path.getsize(os.path.join(images, f)) for f in os.listdir(images) if not f.endswith(".log"))
    return images, size, p.pid, err, ready


def criu_restore_once(criu, images, pid, err, ready):
    # CRIU checks that the files the process had open are as they were: stderr held one line.
    with open(err, "w") as f:
        f.write(ready)
    launch = time.monotonic_ns()
    r = subprocess.run([criu, "restore", "-D", images, "-d", "-o", "restore.log"], capture_output=True)
    restored = time.monotonic_ns()
    if r.returncode != 0:
        raise SystemExit("sparse_bench: criu restore failed:\n%s" %
                         open(os.path.join(images, "restore.log")).read()[-3000:])
    os.kill(pid, signal.SIGUSR1)
    for _ in range(6000):
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.005)
    with open(err) as f:
        lines = f.read().splitlines()
    done = [l for l in lines if l.startswith("done ")]
    if not done:
        raise SystemExit("sparse_bench: the process CRIU restored printed no result:\n%s" % "\n".join(lines))
    return (restored - launch) / 1e6, done[0].split()[3]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--criu")
    ap.add_argument("--gib", type=int, default=10)
    ap.add_argument("--touch", type=int, default=2)
    ap.add_argument("--prot", choices=["rw", "none"], default="rw")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    program = [a.target, "--gib", str(a.gib), "--touch", str(a.touch), "--prot", a.prot]
    with tempfile.TemporaryDirectory(prefix="uffdlazy-sparse-bench-") as workdir:
        image, size = ours(a.cli, program, workdir, a.runs)
        criu = None
        if a.criu:
            criu = criu_dump(a.criu, program, workdir)
        times, criu_times, sums = [], [], set()
        for _ in range(a.runs):
            t, s = resume_once(a.cli, image)
            times.append(t)
            sums.add(s)
            if criu:
                t, s = criu_restore_once(a.criu, criu[0], criu[2], criu[3], criu[4])
                criu_times.append(t)
                sums.add(s)
        if len(sums) != 1:
            raise SystemExit("sparse_bench: runs disagree on the checksum: %s" % sums)
    print("%d GiB reservation (%s), %d pages touched; %d runs each, load %.1f" %
          (a.gib, "PROT_NONE" if a.prot == "none" else "read-write", a.touch, a.runs, os.getloadavg()[0]))
    print("%-10s %14s %36s" % ("", "image, bytes", "launch to running, ms"))
    print("%-10s %14d %36s" % ("uffdlazy", size, fmt(times)))
    if criu:
        print("%-10s %14d %36s" % ("criu", criu[1], fmt(criu_times)))
        print("image size: %.2fx CRIU's; resume time: %.2fx criu restore's" %
              (size / criu[1], statistics.median(times) / statistics.median(criu_times)))


if __name__ == "__main__":
    main()
