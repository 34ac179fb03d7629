// Random (v4) UUIDs from /dev/urandom: node:crypto costs ~9 ms to load on
// the `rkt run` path, reading 16 bytes costs microseconds.
import { closeSync, openSync, readSync } from 'node:fs';

export function randomUUID(): string {
  const b = Buffer.alloc(16);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b, 0, 16, null);
  } finally {
    closeSync(fd);
  }
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
