# A python3 session for the checkpoint/resume tests: builds state (a dict, a large bytes object,
# three worker threads blocked on a queue), is checkpointed while it waits on stdin (when
# CHECKPOINT_HERE=1 it asks for the checkpoint itself), then uses all of it: the output and the
# file it writes must be the same whether or not it was checkpointed and resumed in between.
import decimal
import hashlib
import json
import os
import queue
import signal
import sys
import threading
import time


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


data = {i: (i * 7919 % 100003, str(i) * 5) for i in range(200000)}
blob = bytes((i * 31) & 255 for i in range(3000000))
jobs, answers = queue.Queue(), queue.Queue()


def worker():
    while True:
        item = jobs.get()
        if item is None:
            return
        answers.put((item, digest([data[k] for k in range(item, item + 1000)])))


threads = [threading.Thread(target=worker) for _ in range(3)]
for t in threads:
    t.start()
print("before", digest(data), hashlib.sha256(blob).hexdigest()[:16], flush=True)
if os.environ.get("CHECKPOINT_HERE") == "1":
    os.kill(os.getpid(), signal.SIGUSR2)
line = sys.stdin.readline()
print("read", line.strip())
for item in range(0, 12000, 1000):
    jobs.put(item)
results = sorted(answers.get(timeout=60) for _ in range(12))
for t in threads:
    jobs.put(None)
for t in threads:
    t.join()
with open(sys.argv[1], "w") as f:
    json.dump({"results": results, "blob": hashlib.sha256(blob[::7]).hexdigest()}, f, sort_keys=True)
print("answers", digest(results))
print("decimal", decimal.Decimal(1) / decimal.Decimal(7))
print("clock", time.monotonic() > 0, "threads", threading.active_count())
