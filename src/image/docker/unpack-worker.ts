// A worker thread that extracts layer tars (see layer-sink.ts for the other
// side). The main thread downloads, verifies and decompresses; this thread
// parses the tar and creates the files, the bulk of a pull's CPU time, one
// layer after another, so its compiled code stays warm across layers.
//
// Messages in: { start: dest } (a new layer), Uint8Array (tar bytes,
// transferred), null (end of the layer), { abort: true }. Out: { credit: n }
// (bytes taken off the input buffer, for the sender's flow control), then
// { done: SinkResult } or { error: { code, message, hint } } per layer.
import { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { RktError, errMessage } from '../../lib/errors.ts';
import { extractTar } from '../extract.ts';

const port = parentPort;
if (!port) throw new Error('unpack-worker runs only as a worker thread');

interface Job {
  feed: Readable;
  received: number;
  credited: number;
}
let job: Job | undefined;

function start(dest: string): void {
  const j: Job = {
    received: 0,
    credited: 0,
    feed: new Readable({
      highWaterMark: 4 << 20,
      read() {
        // Called when the buffer runs low: whatever left it is credited back.
        const taken = j.received - j.feed.readableLength;
        if (taken > j.credited) {
          port?.postMessage({ credit: taken - j.credited });
          j.credited = taken;
        }
      },
    }),
  };
  job = j;
  extractTar(j.feed, { dest, root: '', whiteouts: 'overlay' }).then(
    (r) => {
      if (job === j) job = undefined;
      port?.postMessage({ done: { entries: r.entries, opaque: r.opaque, xattrs: r.xattrs } });
    },
    (e: unknown) => {
      if (job === j) job = undefined;
      const error = e instanceof RktError ? { code: e.code, message: e.message, hint: e.hint } : { code: 'IO', message: errMessage(e), hint: undefined };
      port?.postMessage({ error });
    },
  );
}

port.on('message', (m: unknown) => {
  if (m instanceof Uint8Array) {
    if (!job) return;
    job.received += m.byteLength;
    job.feed.push(Buffer.from(m.buffer, m.byteOffset, m.byteLength));
  } else if (m === null) job?.feed.push(null);
  else if (typeof m === 'object' && m !== null) {
    if ('start' in m) start(String((m as { start: unknown }).start));
    else if ('abort' in m) job?.feed.destroy(new Error('aborted'));
  }
});
