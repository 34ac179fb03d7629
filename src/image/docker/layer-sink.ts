// Where a downloaded layer's tar goes: worker threads (unpack-worker.ts)
// when the pull is big enough to pay for them, this thread otherwise. The
// network side is judged here too: an error of the download itself (reset,
// truncated response) is transient and retried by the caller; anything
// found wrong with the content is not.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { RktError, errMessage, type ErrorCode } from '../../lib/errors.ts';
import { TransientError, isTransientNetError } from './registry.ts';
import { LocalSink, unpackStream, type SinkResult, type TarSink, type UnpackOptions, type UnpackResult } from './unpack.ts';

/** Flow control: tar bytes posted to a worker and not yet taken by it. */
const HIGH_WATER = 8 << 20;
const LOW_WATER = 2 << 20;
/** Tar chunks (~256 KB from zlib) are gathered into batches of this size. */
const BATCH = 1 << 20;

/** The worker bundle next to this one (dist/cmd/); undefined when running from source (then in-process). */
export function workerFile(): string | undefined {
  if (process.env.RKT_UNPACK_WORKERS === '0' || typeof __dirname === 'undefined') return undefined;
  const f = join(__dirname, '_image-docker-unpack-worker.js');
  return existsSync(f) ? f : undefined;
}

interface WorkerReply {
  credit?: number;
  done?: SinkResult;
  error?: { code: ErrorCode; message: string; hint?: string };
}

/** One worker thread, reused layer after layer; a failed layer retires it. */
export class UnpackWorker {
  private w: Worker | undefined;
  private readonly file: string;
  private onReply: ((m: WorkerReply) => void) | undefined;
  private onGone: ((e: Error) => void) | undefined;

  constructor(file: string) {
    this.file = file;
  }

  private worker(): Worker {
    if (this.w) return this.w;
    const w = new Worker(this.file);
    w.on('message', (m: WorkerReply) => this.onReply?.(m));
    w.on('error', (e) => this.onGone?.(e));
    w.on('exit', (code) => {
      if (this.w === w) this.w = undefined;
      this.onGone?.(new Error(`the unpacking thread stopped (exit ${code})`));
    });
    this.w = w;
    return w;
  }

  /** Starts the thread early (its start-up then overlaps the manifest and config requests). */
  warm(): void {
    this.worker();
  }

  sink(dest: string): TarSink {
    const w = this.worker();
    w.postMessage({ start: dest });
    let inflight = 0;
    let drain: (() => void) | undefined;
    let batch = new Uint8Array(BATCH);
    let fill = 0;
    let settled = false;
    const flush = (): void => {
      if (fill === 0) return;
      // One copy into the batch (a chunk may be a slice of a larger buffer,
      // which posting would clone whole), then moved, not cloned.
      const out = fill === BATCH ? batch : batch.slice(0, fill);
      w.postMessage(out, [out.buffer]);
      inflight += fill;
      batch = new Uint8Array(BATCH);
      fill = 0;
    };
    const result = new Promise<SinkResult>((resolve, reject) => {
      const finish = (): void => {
        settled = true;
        this.onReply = undefined;
        this.onGone = undefined;
      };
      this.onReply = (m) => {
        if (m.credit !== undefined) {
          inflight -= m.credit;
          if (inflight < LOW_WATER && drain) {
            const cb = drain;
            drain = undefined;
            cb();
          }
        } else if (m.done) {
          finish();
          resolve(m.done);
        } else if (m.error) {
          finish();
          reject(new RktError(m.error.code, m.error.message, m.error.hint ? { hint: m.error.hint } : {}));
        }
      };
      this.onGone = (e) => {
        finish();
        reject(new RktError('IO', `unpacking failed: ${errMessage(e)}`, { cause: e }));
      };
    });
    result.catch(() => undefined);
    const stop = async (): Promise<void> => {
      // Retire the thread: the caller removes the half-made tree next.
      const gone = this.w;
      this.w = undefined;
      this.onReply = undefined;
      this.onGone = undefined;
      await gone?.terminate();
    };
    return {
      write: (chunk) => {
        let off = 0;
        while (off < chunk.length) {
          const n = Math.min(chunk.length - off, BATCH - fill);
          batch.set(chunk.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === BATCH) flush();
        }
        return inflight + fill <= HIGH_WATER;
      },
      onDrain: (cb) => {
        drain = cb;
      },
      end: () => {
        flush();
        w.postMessage(null);
      },
      abort: async () => {
        if (settled) return;
        await stop();
      },
      result,
    };
  }

  close(): void {
    const w = this.w;
    this.w = undefined;
    void w?.terminate();
  }
}

/** Downloads (reads `input`), verifies and unpacks one layer into o.dest/rootfs, on `worker` or here. */
export async function unpackLayer(input: Readable, o: UnpackOptions, worker: UnpackWorker | undefined): Promise<UnpackResult> {
  let netErr: unknown;
  input.on('error', (e) => {
    netErr ??= e;
  });
  input.on('aborted', () => {
    netErr ??= new TransientError('connection closed before the end (truncated blob)');
  });
  const rootfs = join(o.dest, 'rootfs');
  let res: UnpackResult;
  try {
    res = await unpackStream(input, o, worker ? worker.sink(rootfs) : new LocalSink(rootfs));
  } catch (e) {
    // Read before destroying the response: destroying it emits 'aborted',
    // which would make any unpacking error look like a truncated download.
    const net = netErr;
    input.destroy();
    if (net !== undefined && isTransientNetError(net)) throw new TransientError(`${o.what}: ${errMessage(net)}`, net);
    if (e instanceof RktError) throw e;
    throw new RktError('IO', `${o.what}: ${errMessage(e)}`, { cause: e });
  }
  if (netErr !== undefined) throw new TransientError(`${o.what}: ${errMessage(netErr)}`, netErr);
  return res;
}
