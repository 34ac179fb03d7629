// One layer in one pass: raw bytes → SHA-256 (digest check) → gunzip/zstd →
// SHA-256 (diffID check) → safe tar extraction with overlay whiteouts.
import { execFileSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { RktError, errMessage } from '../../lib/errors.ts';
import { extractTar } from '../extract.ts';
import type { Compression } from './manifest.ts';
import { TransientError, isTransientNetError } from './registry.ts';

class Hasher extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private readonly onBytes: ((n: number) => void) | undefined;
  constructor(onBytes?: (n: number) => void) {
    super({ highWaterMark: 1 << 20 });
    this.onBytes = onBytes;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
}

export interface UnpackOptions {
  /** Receives rootfs/ (created). */
  dest: string;
  compression: Compression;
  digest: string | undefined;
  size: number | undefined;
  diffId: string;
  what: string;
  onBytes?: (n: number) => void;
}

/** Sets trusted.overlay.opaque=y on the given dirs (setfattr from Debian's attr). */
export function markOpaque(root: string, dirs: readonly string[]): void {
  if (dirs.length === 0) return;
  try {
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', '--', ...dirs.map((d) => (d === '' ? root : join(root, d)))], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new RktError('IO', `cannot mark opaque directories (setfattr, from Debian's attr package): ${errMessage(e)}`);
  }
}

/** Applies extended attributes in one `setfattr --restore` run (after chown/chmod, so file capabilities survive). */
export function restoreXattrs(root: string, xattrs: readonly [string, string, Buffer][], what: string): void {
  const ok = xattrs.filter(([rel, name]) => !/[\n\\]/.test(rel) && /^[\w.@:-]+$/.test(name));
  if (ok.length === 0) return;
  const dump = ok.map(([rel, name, value]) => `# file: ${rel}\n${name}=0x${value.toString('hex')}\n`).join('\n');
  try {
    execFileSync('setfattr', ['--restore=-'], { cwd: root, input: dump, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0];
    throw new RktError('IO', `${what}: cannot set extended attributes: ${err || errMessage(e)}`);
  }
}

export async function unpackLayer(input: Readable, o: UnpackOptions): Promise<{ bytes: number; entries: number }> {
  const raw = new Hasher(o.onBytes);
  const tarHash = new Hasher();
  let netErr: unknown;
  input.on('error', (e) => {
    netErr ??= e;
    tarHash.destroy(e);
  });
  input.on('aborted', () => {
    netErr ??= new TransientError(`${o.what}: connection closed before the end (truncated blob)`);
  });
  let dec: Transform | undefined;
  if (o.compression === 'gzip') dec = createGunzip({ chunkSize: 1 << 18 });
  else if (o.compression === 'zstd') dec = createZstdDecompress({ chunkSize: 1 << 18 });
  raw.on('error', (e) => tarHash.destroy(e));
  dec?.on('error', (e) => tarHash.destroy(new RktError('BAD_ARCHIVE', `${o.what}: corrupt or truncated ${o.compression} data: ${errMessage(e)}`)));
  if (dec) input.pipe(raw).pipe(dec).pipe(tarHash);
  else input.pipe(raw).pipe(tarHash);
  const rootfs = join(o.dest, 'rootfs');
  let res;
  try {
    res = await extractTar(tarHash, { dest: rootfs, root: '', whiteouts: 'overlay' });
    if (!tarHash.readableEnded) {
      await new Promise<void>((resolve, reject) => {
        tarHash.once('end', resolve);
        tarHash.once('error', reject);
        tarHash.resume();
      });
    }
  } catch (e) {
    // Read before destroying the response: destroying it emits 'aborted',
    // which would make any extraction error look like a truncated download.
    const net = netErr;
    input.destroy();
    if (net !== undefined && isTransientNetError(net)) {
      throw new TransientError(`${o.what}: ${errMessage(net)}`, net);
    }
    if (e instanceof RktError) throw e.message.startsWith(o.what) ? e : new RktError(e.code, `${o.what}: ${e.message}`, { cause: e });
    throw new RktError('BAD_ARCHIVE', `${o.what}: ${errMessage(e)}`, { cause: e });
  }
  if (netErr !== undefined) throw new TransientError(`${o.what}: ${errMessage(netErr)}`, netErr);
  if (o.size !== undefined && raw.bytes !== o.size) {
    throw new RktError('INVALID_IMAGE', `${o.what}: size mismatch: got ${raw.bytes} bytes, the manifest says ${o.size}`);
  }
  const got = `sha256:${raw.hash.digest('hex')}`;
  if (o.digest !== undefined && got !== o.digest) throw new RktError('INVALID_IMAGE', `${o.what}: digest mismatch: the content has ${got}`);
  const diff = `sha256:${tarHash.hash.digest('hex')}`;
  if (diff !== o.diffId) throw new RktError('INVALID_IMAGE', `${o.what}: diff_id mismatch: the uncompressed layer has ${diff}, the config says ${o.diffId}`);
  markOpaque(rootfs, res.opaque);
  restoreXattrs(rootfs, res.xattrs, o.what);
  return { bytes: tarHash.bytes, entries: res.entries };
}
