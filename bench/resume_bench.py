#!/usr/bin/env python3
"""Measures `uffdlazy resume` against an eager resume and against starting the program cold.

Run by scripts/bench_resume.sh (which builds first and writes bench/RESUME_RESULTS.md), or by
scripts/demo_resume.sh (--demo: the python3 case only, printed side by side).

Two programs:
  * bench/targets/resume_bench_target: builds MB MiB of computed state, waits on stdin (the
    checkpoint is taken there), then touches a share of its pages at random. It prints
    CLOCK_MONOTONIC timestamps ("running" = the read returned), so "launch to running" is measured
    from just before `uffdlazy resume` is started to the program's first instruction after it.
  * python3 after importing a heavy module set: time until it answers on stdin ("ready").

Every configuration is run RUNS times, interleaved; medians [min, max] are reported. Cold-cache
runs drop the image from the page cache first (POSIX_FADV_DONTNEED), libraries stay cached.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HEAVY_IMPORTS = (
    "asyncio email.mime.multipart email.parser http.server http.client json xml.dom.minidom "
    "xml.etree.ElementTree sqlite3 unittest unittest.mock decimal fractions argparse logging.handlers "
    "multiprocessing concurrent.futures ssl csv tarfile zipfile difflib statistics pydoc "
    "urllib.request smtplib imaplib ftplib plistlib tomllib configparser shelve pickletools "
    "inspect dataclasses typing ipaddress uuid"
)

PYTHON_PROGRAM = r"""
import os, signal, sys, time
for name in sys.argv[1].split():
    __import__(name)
table = {i: str(i) * 3 for i in range(300000)}
if os.environ.get("RESUME_BENCH_CHECKPOINT") == "1":
    os.kill(os.getpid(), signal.SIGUSR2)
line = sys.stdin.readline()
sys.stderr.write("ready %d %d modules %d\n" % (time.monotonic_ns(), len(sys.modules), len(table)))
sys.stderr.flush()
"""


def real_python():
    """The interpreter itself, not a wrapper script (pyenv shims and the like): the shim's
    variables are meant for the program, not for a shell in front of it."""
    out = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
    return out.stdout.strip() or "/usr/bin/python3"


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("UFFDLAZY_") and k != "LD_PRELOAD"}
    env.update(extra or {})
    return env


def drop_from_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_timed(cmd, marker, env=None):
    """Starts cmd, writes a line to its stdin, and returns (launch_ns, the first stderr line
    starting with marker (split), every stderr line, end_ns, exit code)."""
    launch = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    p.stdin.write(b"go\n")
    p.stdin.close()
    lines = []
    found = None
    for raw in p.stderr:
        line = raw.decode(errors="replace").rstrip("\n")
        lines.append(line)
        if found is None and line.startswith(marker):
            found = line.split()
            found_at = time.monotonic_ns()
    p.wait()
    end = time.monotonic_ns()
    if found is None:
        raise SystemExit("resume_bench: %s printed no '%s' line:\n%s" % (" ".join(cmd), marker, "\n".join(lines)))
    return launch, found, found_at, lines, end, p.returncode


def checkpoint(cli, image, program, env=None):
    if os.path.exists(image):
        os.unlink(image)
    # stdin stays open and empty, so the program waits in its read while it is checkpointed.
    p = subprocess.Popen([cli, "checkpoint", "-o", image, "--"] + program, stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read().decode()
    p.wait(timeout=600)
    p.stdin.close()
    if p.returncode != 0 or not os.path.exists(image):
        raise SystemExit("resume_bench: checkpoint failed (%d):\n%s" % (p.returncode, err))
    return [l for l in err.splitlines() if "written" in l][-1].replace("uffdlazy: checkpoint ", "").split(": ", 1)[-1]


def ms(ns):
    return ns / 1e6


def summary(values):
    values = sorted(values)
    return statistics.median(values), values[0], values[-1]


def fmt(values, digits=1):
    med, lo, hi = summary(values)
    return "%.*f [%.*f, %.*f]" % (digits, med, digits, lo, digits, hi)


def bench_memory(cli, target, mb, permille, runs, workdir):
    image = os.path.join(workdir, "memory.img")
    program = [target, "--mb", str(mb), "--touch-permille", str(permille)]
    note = checkpoint(cli, image, program + ["--checkpoint"], env=clean_env())
    configs = [
        ("cold start (no checkpoint)", program, False),
        ("resume, lazy", [cli, "resume", image], False),
        ("resume, lazy, --prefetch none", [cli, "resume", image, "--prefetch", "none"], False),
        ("resume, eager", [cli, "resume", image, "--eager"], False),
        ("resume, lazy, image not cached", [cli, "resume", image], True),
        ("resume, eager, image not cached", [cli, "resume", image, "--eager"], True),
    ]
    results = {name: {"running": [], "total": [], "touch": []} for name, _, _ in configs}
    checksums = set()
    for _ in range(runs):
        for name, cmd, uncached in configs:
            if uncached:
                drop_from_cache(image)
            launch, running, _, lines, end, rc = run_timed(cmd, "running", env=clean_env())
            if rc != 0:
                raise SystemExit("resume_bench: %s exited %d:\n%s" % (name, rc, "\n".join(lines)))
            done = next(l.split() for l in lines if l.startswith("done"))
            checksums.add(done[3])
            results[name]["running"].append(ms(int(running[1]) - launch))
            results[name]["total"].append(ms(end - launch))
            results[name]["touch"].append(ms(int(done[1]) - int(running[1])))
    if len(checksums) != 1:
        raise SystemExit("resume_bench: runs disagree on the checksum: %s" % checksums)
    return configs, results, note, os.path.getsize(image)


def bench_python(cli, python, runs, workdir):
    image = os.path.join(workdir, "python.img")
    script = os.path.join(workdir, "warm.py")
    with open(script, "w") as f:
        f.write(PYTHON_PROGRAM)
    program = [python, script, HEAVY_IMPORTS]
    note = checkpoint(cli, image, program, env=clean_env({"RESUME_BENCH_CHECKPOINT": "1"}))
    configs = [
        ("cold start", program),
        ("resume, lazy", [cli, "resume", image]),
        ("resume, eager", [cli, "resume", image, "--eager"]),
    ]
    results = {name: {"ready": [], "total": []} for name, _ in configs}
    for _ in range(runs):
        for name, cmd in configs:
            launch, ready, ready_at, lines, end, rc = run_timed(cmd, "ready", env=clean_env())
            if rc != 0:
                raise SystemExit("resume_bench: python %s exited %d:\n%s" % (name, rc, "\n".join(lines)))
            results[name]["ready"].append(ms(int(ready[1]) - launch))
            results[name]["total"].append(ms(end - launch))
    modules = ready[2]
    return configs, results, note, os.path.getsize(image), modules


def ratio(a, b):
    return summary(a)[0] / summary(b)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--permille", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--demo", action="store_true", help="python3 only, printed side by side")
    a = ap.parse_args()
    python = real_python()
    with tempfile.TemporaryDirectory(prefix="uffdlazy-resume-bench-") as workdir:
        if a.demo:
            configs, res, note, size, modules = bench_python(a.cli, python, a.runs, workdir)
            print("python3 (%s) after importing %s modules; image %.1f MiB" % (python, modules, size / 2**20))
            print("%-16s %28s %28s" % ("", "time to ready, ms", "until it exited, ms"))
            for name, _ in configs:
                print("%-16s %28s %28s" % (name, fmt(res[name]["ready"]), fmt(res[name]["total"])))
            print("resumed lazily it was ready %.1fx sooner than a cold start" %
                  ratio(res["cold start"]["ready"], res["resume, lazy"]["ready"]))
            return
        mconfigs, mres, mnote, msize = bench_memory(a.cli, a.target, a.mb, a.permille, a.runs, workdir)
        pconfigs, pres, pnote, psize, modules = bench_python(a.cli, python, a.runs, workdir)
    lazy_vs_eager = ratio(mres["resume, lazy"]["total"], mres["resume, eager"]["total"])
    py_speedup = ratio(pres["cold start"]["ready"], pres["resume, lazy"]["ready"])
    out = []
    w = out.append
    w("# Resume benchmarks\n")
    w("Generated by `scripts/bench_resume.sh` (do not edit by hand); sources: `bench/resume_bench.py`, "
      "`bench/targets/resume_bench_target.cpp`.\n")
    w("## Summary\n")
    w("- **Lazy vs eager, %d MiB, %.1f%% of the pages touched after the resume: lazy total = %.3f of eager "
      "(goal <= 0.2: %s).** Launch to running: %s ms lazy, %s ms eager (medians)." %
      (a.mb, a.permille / 10, lazy_vs_eager, "met" if lazy_vs_eager <= 0.2 else "NOT met",
       "%.2f" % summary(mres["resume, lazy"]["running"])[0], "%.1f" % summary(mres["resume, eager"]["running"])[0]))
    w("- Lazy with `--prefetch none` (on demand only, no background fill): total = %.3f of eager." %
      ratio(mres["resume, lazy, --prefetch none"]["total"], mres["resume, eager"]["total"]))
    w("- **python3 after importing %s modules is ready %.1fx sooner resumed lazily than started cold "
      "(goal >= 10x: %s).**" % (modules, py_speedup, "met" if py_speedup >= 10 else "NOT met"))
    w("")
    w("## %d MiB of computed state, %.1f%% touched at random after the resume\n" % (a.mb, a.permille / 10))
    w("`resume_bench_target --mb %d --touch-permille %d`, checkpointed in its read of stdin after the warm-up; "
      "image %.1f MiB (`%s`). *Lazy* is the default (`--prefetch all`: the monitor fills every page in the "
      "background while the program runs); `--prefetch none` serves pages on demand only. *Launch to running*: from just before the command starts to the program's first "
      "instruction after the read (for the cold start: the whole warm-up). *Touch*: the random touches alone. "
      "*Total*: until the process has exited. Median [min, max] of %d runs, ms.\n" %
      (a.mb, a.permille, msize / 2**20, mnote, a.runs))
    w("| configuration | launch to running | touch | total |")
    w("|---|---:|---:|---:|")
    for name, _, _ in mconfigs:
        r = mres[name]
        w("| %s | %s | %s | %s |" % (name, fmt(r["running"], 2), fmt(r["touch"]), fmt(r["total"])))
    w("")
    w("Ratios of medians: lazy/eager total %.3f, lazy/eager launch-to-running %.4f; lazy total / cold start "
      "total %.3f; eager total / cold start total %.3f.\n" %
      (lazy_vs_eager, ratio(mres["resume, lazy"]["running"], mres["resume, eager"]["running"]),
       ratio(mres["resume, lazy"]["total"], mres["cold start (no checkpoint)"]["total"]),
       ratio(mres["resume, eager"]["total"], mres["cold start (no checkpoint)"]["total"])))
    w("## python3 after importing a heavy module set\n")
    w("`%s` importing %d modules by name (%s ...) and building a 300 000-entry dict, then waiting on stdin; "
      "%s modules loaded in all. Image %.1f MiB (`%s`). *Ready*: from launch to its answer on stdin. Median "
      "[min, max] of %d runs, ms.\n" %
      (python, len(HEAVY_IMPORTS.split()), " ".join(HEAVY_IMPORTS.split()[:6]), modules, psize / 2**20, pnote, a.runs))
    w("| configuration | ready | until it exited |")
    w("|---|---:|---:|")
    for name, _ in pconfigs:
        w("| %s | %s | %s |" % (name, fmt(pres[name]["ready"]), fmt(pres[name]["total"])))
    w("")
    w("Ratios of medians (ready): cold / lazy %.1fx, cold / eager %.1fx. The time until exit includes the "
      "interpreter's own shutdown, which frees every module and, resumed lazily, faults in every page it "
      "still had to get.\n" % (py_speedup, ratio(pres["cold start"]["ready"], pres["resume, eager"]["ready"])))
    w("## Machine\n")
    w("- Date: %s UTC; kernel %s; %d CPUs; load average %s." %
      (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), os.uname().release, os.cpu_count(),
       " ".join(open("/proc/loadavg").read().split()[:3])))
    w("- A shared, noisy VM: compare ratios within this run, never absolute times across runs.")
    text = "\n".join(out) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
