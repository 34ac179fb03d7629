// One layer in one pass: raw bytes → SHA-256 (digest check) → gunzip/zstd →
// SHA-256 (diffID check) → a TarSink, which extracts safely with overlay
// whiteouts, here (LocalSink) or on a worker thread (layer-sink.ts).
// The per-byte work (hashing, driving zlib, whose inflating runs on libuv's
// pool) stays on this thread; the per-entry work (tar parsing, creating
// files: most of the CPU time) is what a worker takes over.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable, type Transform } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { RktError, errMessage } from '../../lib/errors.ts';
import { extractTar, type ExtractResult } from '../extract.ts';
import type { Compression } from './manifest.ts';

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

export interface UnpackResult {
  bytes: number;
  entries: number;
}

/** What extraction reports back (the Map of captured files is not used for layers). */
export type SinkResult = Pick<ExtractResult, 'entries' | 'opaque' | 'xattrs'>;

/** Receives the uncompressed tar of one layer and extracts it into `dest`. */
export interface TarSink {
  /** false: stop writing until onDrain's callback runs. */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(): void;
  /** Stops extracting; resolves once nothing writes into the tree any more. */
  abort(): Promise<void>;
  readonly result: Promise<SinkResult>;
}

/** Extraction on this thread; file creation goes through libuv's pool so that layers side by side use several CPUs. */
export class LocalSink implements TarSink {
  private drain: (() => void) | undefined;
  private readonly feed = new Readable({
    highWaterMark: 4 << 20,
    read: () => {
      const cb = this.drain;
      this.drain = undefined;
      cb?.();
    },
  });
  readonly result: Promise<SinkResult>;

  constructor(dest: string) {
    this.result = extractTar(this.feed, { dest, root: '', whiteouts: 'overlay', asyncOpen: true });
    // Observed by the caller; this keeps an early failure from being unhandled meanwhile.
    this.result.catch(() => undefined);
  }

  write(chunk: Buffer): boolean {
    return this.feed.push(chunk);
  }

  onDrain(cb: () => void): void {
    this.drain = cb;
  }

  end(): void {
    this.feed.push(null);
  }

  async abort(): Promise<void> {
    this.feed.destroy(new Error('aborted'));
    await this.result.catch(() => undefined);
  }
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
export function restoreXattrs(root: string, xattrs: readonly [string, string, Uint8Array][], what: string): void {
  const ok = xattrs.filter(([rel, name]) => !/[\n\\]/.test(rel) && /^[\w.@:-]+$/.test(name));
  if (ok.length === 0) return;
  const dump = ok.map(([rel, name, value]) => `# file: ${rel}\n${name}=0x${Buffer.from(value).toString('hex')}\n`).join('\n');
  try {
    execFileSync('setfattr', ['--restore=-'], { cwd: root, input: dump, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0];
    throw new RktError('IO', `${what}: cannot set extended attributes: ${err || errMessage(e)}`);
  }
}

function prefixed(e: unknown, what: string): RktError {
  if (e instanceof RktError) return e.message.startsWith(what) ? e : new RktError(e.code, `${what}: ${e.message}`, { cause: e, ...(e.hint ? { hint: e.hint } : {}) });
  return new RktError('BAD_ARCHIVE', `${what}: ${errMessage(e)}`, { cause: e });
}

/**
 * Reads a layer's raw bytes from `input`, verifies and unpacks it through
 * `sink` into o.dest/rootfs. Throws RktError for what is wrong with the
 * content; an error of `input` itself is rethrown as it is (the caller
 * judges network errors). Leaves `input` alone on failure: the caller reads
 * its own error state first, then destroys it (destroying an HTTP response
 * emits 'aborted', which would mask the real error).
 */
export async function unpackStream(input: Readable, o: UnpackOptions, sink: TarSink): Promise<UnpackResult> {
  const rawHash = createHash('sha256');
  const tarHash = createHash('sha256');
  let rawBytes = 0;
  let tarBytes = 0;
  let dec: Transform | undefined;
  if (o.compression === 'gzip') dec = createGunzip({ chunkSize: 1 << 20 });
  else if (o.compression === 'zstd') dec = createZstdDecompress({ chunkSize: 1 << 20 });
  const tarSource: Readable = dec ?? input;

  let failure: unknown;
  let inputErr: unknown;
  let fail: (e: unknown) => void = () => undefined;
  const streamEnded = new Promise<void>((resolve, reject) => {
    fail = (e) => {
      if (failure !== undefined) return;
      failure = e;
      reject(e);
    };
    const onTar = (chunk: Buffer): void => {
      if (failure !== undefined) return;
      tarHash.update(chunk);
      tarBytes += chunk.length;
      if (!sink.write(chunk)) {
        tarSource.pause();
        sink.onDrain(() => tarSource.resume());
      }
    };
    input.on('error', (e) => {
      inputErr ??= e;
      fail(e);
    });
    input.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      rawHash.update(chunk);
      rawBytes += chunk.length;
      o.onBytes?.(chunk.length);
      if (!dec) return onTar(chunk);
      if (!dec.write(chunk)) {
        input.pause();
        dec.once('drain', () => input.resume());
      }
    });
    if (dec) {
      const d = dec;
      input.on('end', () => d.end());
      d.on('error', (e) => fail(new RktError('BAD_ARCHIVE', `${o.what}: corrupt or truncated ${o.compression} data: ${errMessage(e)}`)));
      d.on('data', onTar);
      d.on('end', () => resolve());
    } else input.on('end', () => resolve());
  });
  streamEnded.catch(() => undefined);
  void streamEnded.then(() => sink.end(), () => undefined);

  let res: SinkResult;
  try {
    // The sink fails first when the content is bad; the stream when the download or the compression is.
    res = await Promise.race([sink.result, streamEnded.then(() => sink.result)]);
    await streamEnded;
  } catch (e) {
    const first = failure ?? e;
    fail(first);
    input.pause();
    dec?.destroy();
    await sink.abort();
    if (first === inputErr) throw first; // the download's own error: the caller judges it
    throw prefixed(first, o.what);
  }
  if (o.size !== undefined && rawBytes !== o.size) {
    throw new RktError('INVALID_IMAGE', `${o.what}: size mismatch: got ${rawBytes} bytes, the manifest says ${o.size}`);
  }
  const got = `sha256:${rawHash.digest('hex')}`;
  if (o.digest !== undefined && got !== o.digest) throw new RktError('INVALID_IMAGE', `${o.what}: digest mismatch: the content has ${got}`);
  const diff = `sha256:${tarHash.digest('hex')}`;
  if (diff !== o.diffId) throw new RktError('INVALID_IMAGE', `${o.what}: diff_id mismatch: the uncompressed layer has ${diff}, the config says ${o.diffId}`);
  const rootfs = join(o.dest, 'rootfs');
  markOpaque(rootfs, res.opaque);
  restoreXattrs(rootfs, res.xattrs, o.what);
  return { bytes: tarBytes, entries: res.entries };
}
