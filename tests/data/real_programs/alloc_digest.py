# Builds ~100 MB of Python objects of every common kind and prints digests of them. The e2e test
# runs it with and without libuffdlazy.so and requires identical output: the small objects live
# in pymalloc's 1 MiB arenas, which CPython maps with mmap() and the shim pages lazily.
import hashlib
import random
import sys


def digest(label, value):
    h = hashlib.sha256(repr(value).encode()).hexdigest()
    print(f"{label}: {h}")


rng = random.Random(20240601)

# Integers and floats: a few million small objects.
ints = list(range(1_000_000))
print("ints", len(ints), sum(ints), sum(i * i for i in ints[::7]))
floats = [rng.random() for _ in range(400_000)]
digest("floats", floats[::997])
print("floats sum", f"{sum(floats):.6f}")

# Tuples and nested lists.
pairs = [(i, i * 3 % 1009, str(i)) for i in range(300_000)]
digest("pairs", pairs[::1013])

# Strings: many short ones, some long ones, joins and splits.
words = ["w%07d" % rng.randrange(10_000_000) for _ in range(400_000)]
text = " ".join(words)
print("text", len(text), hashlib.sha256(text.encode()).hexdigest())
print("split", len(text.split()), len(set(words)))

# Dicts: insertion-ordered, so their repr is deterministic.
table = {w: i for i, w in enumerate(words)}
print("dict", len(table), sum(table.values()) % 1_000_003)
counts = {}
for w in words:
    k = w[-2:]
    counts[k] = counts.get(k, 0) + 1
digest("counts", sorted(counts.items()))

# Bytes and bytearrays: big buffers (glibc malloc) written and hashed.
blob = bytes(rng.getrandbits(8) for _ in range(200_000)) * 50
print("blob", len(blob), hashlib.sha256(blob).hexdigest())
buf = bytearray(16 * 1024 * 1024)
for i in range(0, len(buf), 4096):
    buf[i] = i // 4096 % 251
print("bytearray", len(buf), hashlib.sha256(buf).hexdigest())

# Free a lot and allocate again: arenas are released and mapped anew.
del ints, pairs, table
again = [str(i) * 3 for i in range(500_000)]
digest("again", again[::4999])
print("done", sys.version_info[0])
