// Builds ~100 MB of JavaScript objects, arrays, strings and Buffers and prints digests of them.
// The e2e test runs it with and without libuffdlazy.so and requires identical output: V8 maps
// its heap (and the cage it reserves for it) with mmap(), which the shim pages lazily.
'use strict';
const crypto = require('crypto');

const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');

// A deterministic generator (xorshift32): Math.random() is seeded per process.
let seed = 20240601;
const rand = () => {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed;
};

// Small integers and doubles in plain arrays.
const ints = Array.from({ length: 2_000_000 }, (_, i) => i);
console.log('ints', ints.length, ints.reduce((a, b) => a + b, 0));
const doubles = Array.from({ length: 500_000 }, () => rand() / 4294967296);
console.log('doubles', sha(doubles.filter((_, i) => i % 997 === 0).join(',')));

// Objects with several shapes.
const objs = [];
for (let i = 0; i < 400_000; i++) {
  objs.push(i % 3 === 0 ? { id: i, name: 'n' + i, tags: [i % 7, i % 11] }
                        : { id: i, value: rand() % 100000, nested: { a: i, b: String(i * 2) } });
}
console.log('objs', objs.length, sha(JSON.stringify(objs.filter((_, i) => i % 1009 === 0))));

// Strings: many small ones, a big join, a Map keyed by them.
const words = Array.from({ length: 300_000 }, () => 'w' + (rand() % 10_000_000).toString().padStart(7, '0'));
const text = words.join(' ');
console.log('text', text.length, sha(text));
const map = new Map();
words.forEach((w, i) => map.set(w, i));
let msum = 0;
for (const v of map.values()) msum = (msum + v) % 1_000_003;
console.log('map', map.size, msum);

// Buffers (off-heap, allocated by node) and typed arrays.
const buf = Buffer.alloc(32 * 1024 * 1024);
for (let i = 0; i < buf.length; i += 4096) buf[i] = (i >> 12) % 251;
console.log('buffer', buf.length, sha(buf));
const f64 = new Float64Array(2_000_000);
for (let i = 0; i < f64.length; i++) f64[i] = Math.sqrt(i);
console.log('float64', sha(Buffer.from(f64.buffer)));

// Drop most of it, collect, and allocate again.
ints.length = 0;
objs.length = 0;
const again = Array.from({ length: 300_000 }, (_, i) => ({ i, s: 'x'.repeat(i % 50) }));
console.log('again', again.length, sha(JSON.stringify(again.slice(0, 2000))));
console.log('done');
