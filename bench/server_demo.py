#!/usr/bin/env python3
"""A small server checkpointed warm and resumed: how soon it answers its first request.

Run by scripts/demo_resume.sh. The server is python3: it imports a heavy module set and builds a
table (its warm-up, about a second), listens on a TCP port of 127.0.0.1, and serves requests from
two workers (threads by default, or forked processes) that accept on the one listening socket.
`uffdlazy checkpoint` takes it once it is warm (listening socket included; with processes, the
whole tree, which a resume refuses for now: each process would bind the socket again);
each run then measures, from the moment the command starts, how long until a client connecting
to the port gets a complete answer:
  * cold start:     python3 server.py (the whole warm-up first);
  * resume, lazy:   uffdlazy resume IMG (pages come from the image as they are touched);
  * resume, eager:  uffdlazy resume IMG --eager (every page read before the program continues).
Every answer is checked against the cold start's. Median [min, max] of RUNS runs, interleaved.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resume_bench import HEAVY_IMPORTS, clean_env, real_python  # noqa: E402

SERVER_PROGRAM = r"""
import os, signal, socket, sys, threading
port, workers, mode = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for name in sys.argv[1].split():
    __import__(name)
table = {i: str(i) * 3 for i in range(1500000)}
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(64)

def serve(worker):
    while True:
        conn, _ = listener.accept()
        with conn:
            key = int(conn.recv(64).split()[0])
            conn.sendall(("%s %d\n" % (table[key], len(table))).encode())

children = []
if mode == "processes":
    for w in range(workers):
        pid = os.fork()
        if pid == 0:
            serve(w)
            os._exit(0)
        children.append(pid)
else:
    for w in range(workers):
        threading.Thread(target=serve, args=(w,), daemon=True).start()
sys.stderr.write("listening %d workers (%s)\n" % (workers, mode))
sys.stderr.flush()
if os.environ.get("SERVER_DEMO_CHECKPOINT") == "1":
    os.kill(os.getpid(), signal.SIGUSR2)  # warm, workers waiting in accept: the checkpoint
if children:
    for pid in children:
        os.waitpid(pid, 0)
else:
    threading.Event().wait()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port, key, deadline):
    """Connects (retrying while nobody listens yet) and returns the first complete answer."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
                c.sendall(b"%d\n" % key)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data.endswith(b"\n"):
                    return data.decode()
        except (ConnectionRefusedError, ConnectionResetError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit("server_demo: no answer within 120 s")
        time.sleep(0.001)


def stop(p):
    """Ends the whole process group (the server and its workers) and reaps the command."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def first_answer(cmd, port, key):
    launch = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=clean_env(), start_new_session=True)
    try:
        answer = ask(port, key, time.monotonic() + 120)
        took = (time.monotonic_ns() - launch) / 1e6
    finally:
        stop(p)
    err = p.stderr.read().decode(errors="replace")
    return took, answer, err


def checkpoint(cli, image, program, port):
    env = clean_env({"SERVER_DEMO_CHECKPOINT": "1"})
    p = subprocess.run([cli, "checkpoint", "-o", image, "--"] + program, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=300)
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0 or not os.path.exists(image):
        raise SystemExit("server_demo: the checkpoint failed (exit %d):\n%s" % (p.returncode, err))
    return [l for l in err.splitlines() if "written" in l][-1]


def fmt(values):
    v = sorted(values)
    return "%.1f [%.1f, %.1f]" % (statistics.median(v), v[0], v[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", choices=["processes", "threads"], default="threads")
    a = ap.parse_args()
    python = real_python()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="uffdlazy-server-demo-") as workdir:
        script = os.path.join(workdir, "server.py")
        with open(script, "w") as f:
            f.write(SERVER_PROGRAM)
        program = [python, script, HEAVY_IMPORTS, str(port), "2", a.workers]
        image = os.path.join(workdir, "server.img")
        note = checkpoint(a.cli, image, program, port)
        images = [n for n in os.listdir(workdir) if n.startswith("server.img")]
        size = sum(os.path.getsize(os.path.join(workdir, n)) for n in images)
        configs = [("cold start", program), ("resume, lazy", [a.cli, "resume", image]),
                   ("resume, eager", [a.cli, "resume", image, "--eager"])]
        times = {name: [] for name, _ in configs}
        expected = None
        for run in range(a.runs):
            key = 1000 + 7919 * run
            for name, cmd in configs:
                took, answer, err = first_answer(cmd, port, key)
                if name == "cold start":
                    expected = answer
                elif answer != expected:
                    raise SystemExit("server_demo: %s answered %r, the cold start %r\n%s" % (name, answer, expected, err))
                times[name].append(took)
    print("python3 server: %s modules imported, a 1 500 000-entry table, 2 workers (%s) on one listening socket"
          % (len(HEAVY_IMPORTS.split()), a.workers))
    print("%s; %d image file%s, %.1f MiB" % (note.replace("uffdlazy: ", ""), len(images), "" if len(images) == 1 else "s",
                                              size / 2**20))
    print("%-16s %32s" % ("", "launch to first answer, ms"))
    for name, _ in configs:
        print("%-16s %32s" % (name, fmt(times[name])))
    cold = statistics.median(times["cold start"])
    lazy = statistics.median(times["resume, lazy"])
    print("resumed lazily it answered its first request in %.0f%% of its cold start's time (%.1fx sooner)"
          % (100 * lazy / cold, cold / lazy))


if __name__ == "__main__":
    main()
