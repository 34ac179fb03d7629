// Randomness from /dev/urandom: node:crypto costs ~10 ms to load on the
// `rkt run` path, reading a few bytes costs microseconds.
import { closeSync, openSync, readSync } from 'node:fs';

export function randomBytesSync(n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let off = 0;
    while (off < n) off += readSync(fd, b, off, n - off, null);
  } finally {
    closeSync(fd);
  }
  return b;
}

/** A uniform integer in [min, max) (max - min ≤ 2^32), by rejection sampling. */
export function randomInt(min: number, max: number): number {
  const range = max - min;
  const limit = Math.floor(0x1_0000_0000 / range) * range;
  for (;;) {
    const x = randomBytesSync(4).readUInt32LE(0);
    if (x < limit) return min + (x % range);
  }
}

/** A random (version 4) UUID. */
export function randomUUID(): string {
  const b = randomBytesSync(16);
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
