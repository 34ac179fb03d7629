// Opens a possibly compressed archive as a stream of its uncompressed bytes.
// gzip and zstd through node:zlib; bzip2 and xz through Debian's bzip2/xz
// binaries (streaming, on another core).
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { RktError } from '../lib/errors.ts';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** Identifies the compression from the first bytes. Pure. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export function fileCompression(path: string): Compression {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(8);
    const n = readSync(fd, head, 0, 8, 0);
    return detectCompression(head.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

function viaChild(cmd: string, path: string): Readable {
  const child = spawn(cmd, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = child.stdout;
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.on('error', (e) => out.destroy(new RktError('IO', `cannot run ${cmd}: ${e.message}`)));
  child.on('close', (code) => {
    if (code !== 0) out.destroy(new RktError('BAD_ARCHIVE', `corrupt or truncated archive: ${cmd}: ${err.trim().split('\n')[0] ?? `exit ${code}`}`));
  });
  // Killed if the consumer gives up early.
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return out;
}

/** The uncompressed bytes of the archive at path. */
export function openDecompressed(path: string): Readable {
  const kind = fileCompression(path);
  switch (kind) {
    case 'none':
      return createReadStream(path, { highWaterMark: 1 << 20 });
    case 'gzip':
      return createReadStream(path, { highWaterMark: 1 << 20 }).pipe(createGunzip({ chunkSize: 1 << 18 }));
    case 'zstd':
      return createReadStream(path, { highWaterMark: 1 << 20 }).pipe(createZstdDecompress({ chunkSize: 1 << 18 }));
    case 'bzip2':
      return viaChild('bzip2', path);
    case 'xz':
      return viaChild('xz', path);
  }
}
