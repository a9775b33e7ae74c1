#!/usr/bin/env python3
"""uffdlazy checkpoint/resume side by side with criu dump/restore, on the same programs (issue 15).

Three cases: a small process (resume_bench_target --mb 1), a 512 MiB process that touches 1% of
its pages at random after the resume (--mb 512 --touch-permille 10), and a 10 GiB reservation with
2 pages written (tests/targets/sparse_reservation). For each:

  * uffdlazy: `uffdlazy checkpoint` of the program waiting on stdin (its time: what the checkpoint
    line says, trigger to image in place; the image's size), then `uffdlazy resume IMG`, lazy by
    default (the monitor fills every page in the background), and with --prefetch none (on demand
    only): launch to running (the program's own "running" line, CLOCK_MONOTONIC, the first thing
    it does after the resume) and launch to exit;
  * with --criu-lazy, also CRIU's own lazy restore (`criu lazy-pages` daemon + `criu restore
    --lazy-pages`), timed the same way;
  * CRIU (root): the same program without the shim, detached (new session, stdin /dev/null, stderr
    to a file) and waiting for SIGUSR1; `criu dump` (wall time; the images directory's size, logs
    left out), then `criu restore -d` (launch to criu's exit: the process is running then; this
    script is its child subreaper, so it is told SIGUSR1 at once and reaped: launch to exit).

Every run of both must print the same checksum. Prints a markdown table (medians [min, max]).

  bench/criu_compare.py --cli build/bin/uffdlazy --bench-target build/bin/resume_bench_target \\
      --sparse-target build/targets/sparse_reservation --criu /path/to/criu [--runs 5]
"""
import argparse
import ctypes
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36


def fmt(values, digits=1):
    v = sorted(values)
    return "%.*f [%.*f, %.*f]" % (digits, statistics.median(v), digits, v[0], digits, v[-1])


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("UFFDLAZY_")}


def dir_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if not f.endswith(".log"))


def line_field(lines, prefix, index):
    for l in lines:
        if l.startswith(prefix):
            return l.split()[index]
    return None


def ours_checkpoint(cli, program, image):
    if os.path.exists(image):
        os.unlink(image)
    start = time.monotonic_ns()
    p = subprocess.Popen([cli, "checkpoint", "-o", image, "--"] + program + ["--checkpoint"], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    err = p.stderr.read().decode()
    p.wait(timeout=600)
    wall = (time.monotonic_ns() - start) / 1e6
    p.stdin.close()
    if p.returncode != 0 or not os.path.exists(image):
        raise SystemExit("criu_compare: checkpoint failed (%d):\n%s" % (p.returncode, err))
    line = [l for l in err.splitlines() if "written" in l][-1]
    in_ms = float(line.rsplit(", in ", 1)[1].split()[0]) if ", in " in line else float("nan")
    return os.path.getsize(image), in_ms, wall


def ours_resume(cli, image, extra=()):
    launch = time.monotonic_ns()
    p = subprocess.Popen([cli, "resume", image] + list(extra), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=clean_env())
    _, err = p.communicate(b"go\n", timeout=600)
    end = time.monotonic_ns()
    lines = err.decode(errors="replace").splitlines()
    running, checksum = line_field(lines, "running ", 1), line_field(lines, "done ", 3)
    if p.returncode != 0 or running is None or checksum is None:
        raise SystemExit("criu_compare: resume failed (%d):\n%s" % (p.returncode, "\n".join(lines)))
    return (int(running) - launch) / 1e6, (end - launch) / 1e6, checksum


def criu_dump(criu, program, workdir, ready):
    images = os.path.join(workdir, "criu")
    shutil.rmtree(images, ignore_errors=True)
    os.mkdir(images)
    err = os.path.join(workdir, "criu.err")
    with open(err, "w") as e, open(os.devnull) as null, open(os.devnull, "w") as out:
        p = subprocess.Popen(program + ["--wait-signal"], stdin=null, stdout=out, stderr=e, start_new_session=True)
    for _ in range(60000):
        with open(err) as f:
            if f.read().startswith(ready):
                break
        time.sleep(0.01)
    with open(err) as f:
        before = f.read()
    start = time.monotonic_ns()
    r = subprocess.run([criu, "dump", "-t", str(p.pid), "-D", images, "-o", "dump.log"], capture_output=True)
    wall = (time.monotonic_ns() - start) / 1e6
    p.wait(timeout=60)
    if r.returncode != 0:
        raise SystemExit("criu_compare: criu dump failed:\n%s" % open(os.path.join(images, "dump.log")).read()[-3000:])
    return images, dir_size(images), wall, p.pid, err, before


def criu_restore(criu, images, pid, err, before, lazy=False):
    # CRIU checks that the files the process had open are as they were: stderr held its first line.
    with open(err, "w") as f:
        f.write(before)
    daemon = None
    if lazy:
        # CRIU's own lazy restore: its lazy-pages daemon serves the pages through userfaultfd.
        sock = os.path.join(images, "lazy-pages.socket")
        if os.path.exists(sock):
            os.unlink(sock)
        daemon = subprocess.Popen([criu, "lazy-pages", "-D", images, "-o", "lazy.log"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        for _ in range(5000):
            if os.path.exists(sock):
                break
            time.sleep(0.001)
    launch = time.monotonic_ns()
    r = subprocess.run([criu, "restore", "-D", images, "-d", "-o", "restore.log"] + (["--lazy-pages"] if lazy else []),
                       capture_output=True)
    restored = time.monotonic_ns()
    if r.returncode != 0:
        raise SystemExit("criu_compare: criu restore failed:\n%s" %
                         open(os.path.join(images, "restore.log")).read()[-3000:])
    os.kill(pid, signal.SIGUSR1)
    os.waitpid(pid, 0)  # reparented to this script, the subreaper
    end = time.monotonic_ns()
    if daemon:
        daemon.wait(timeout=60)
    with open(err) as f:
        lines = f.read().splitlines()
    checksum = line_field(lines, "done ", 3)
    if checksum is None:
        raise SystemExit("criu_compare: the process CRIU restored printed no result:\n%s" % "\n".join(lines))
    return (restored - launch) / 1e6, (end - launch) / 1e6, checksum


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--bench-target", required=True)
    ap.add_argument("--sparse-target", required=True)
    ap.add_argument("--criu")
    ap.add_argument("--criu-lazy", action="store_true", help="also criu restore --lazy-pages (its lazy-pages daemon)")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("criu_compare: cannot become a child subreaper")
    cases = [
        ("small process (1 MiB of state, all touched)", [a.bench_target, "--mb", "1", "--touch-permille", "1000"], "warm"),
        ("512 MiB, 1% touched at random after the resume",
         [a.bench_target, "--mb", "512", "--touch-permille", "10"], "warm"),
        ("10 GiB reservation, 2 pages written", [a.sparse_target, "--gib", "10", "--touch", "2"], "ready"),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="uffdlazy-criu-compare-") as workdir:
        for name, program, ready in cases:
            image = os.path.join(workdir, "ours.img")
            size, ck_ms, ck_wall = ours_checkpoint(a.cli, program, image)
            crit = criu_dump(a.criu, program, workdir, ready) if a.criu else None
            ours_run, ours_total, criu_run, criu_total, sums = [], [], [], [], set()
            lazy_run, lazy_total, none_run, none_total = [], [], [], []
            for _ in range(a.runs):
                r, t, s = ours_resume(a.cli, image)
                ours_run.append(r)
                ours_total.append(t)
                sums.add(s)
                r, t, s = ours_resume(a.cli, image, ["--prefetch", "none"])
                none_run.append(r)
                none_total.append(t)
                sums.add(s)
                if crit:
                    r, t, s = criu_restore(a.criu, crit[0], crit[3], crit[4], crit[5])
                    criu_run.append(r)
                    criu_total.append(t)
                    sums.add(s)
                    if a.criu_lazy:
                        r, t, s = criu_restore(a.criu, crit[0], crit[3], crit[4], crit[5], lazy=True)
                        lazy_run.append(r)
                        lazy_total.append(t)
                        sums.add(s)
            if len(sums) != 1:
                raise SystemExit("criu_compare: %s: runs disagree on the checksum: %s" % (name, sums))
            rows.append((name, "uffdlazy checkpoint / resume", size, "%.0f" % ck_ms, fmt(ours_run, 2), fmt(ours_total)))
            rows.append((name, "uffdlazy checkpoint / resume --prefetch none", size, "%.0f" % ck_ms, fmt(none_run, 2),
                         fmt(none_total)))
            if crit:
                rows.append((name, "criu dump / restore", crit[1], "%.0f" % crit[2], fmt(criu_run, 2), fmt(criu_total)))
            if lazy_run:
                rows.append((name, "criu dump / restore --lazy-pages", crit[1], "%.0f" % crit[2], fmt(lazy_run, 2),
                             fmt(lazy_total)))
            os.unlink(image)
    print("| case | tool | image, bytes | checkpoint, ms | launch to running, ms | launch to exit, ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %d | %s | %s | %s |" % r)
    print()
    print("%d runs each, interleaved; load average %.2f %.2f %.2f; %s" %
          ((a.runs,) + os.getloadavg() + (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),)))


if __name__ == "__main__":
    main()
