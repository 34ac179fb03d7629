// The commands' stdout and stderr: synchronous writes to fds 1 and 2.
// process.stdout is synchronous for files, pipes and terminals on Linux
// too, but building it loads Node's stream machinery (~5–10 ms per start:
// a third of `rkt list`'s own time).
import { writeSync } from 'node:fs';
import { isErrno } from '../lib/errors.ts';

export interface Out {
  write(chunk: string | Uint8Array): boolean;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

export function fdWriter(fd: 1 | 2): Out {
  return {
    write(chunk) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let off = 0; off < buf.length; ) {
        try {
          off += writeSync(fd, buf, off);
        } catch (e) {
          // A non-blocking fd we inherited: wait for room.
          if (isErrno(e, 'EAGAIN')) {
            Atomics.wait(pause, 0, 0, 1);
            continue;
          }
          // Output to a closed pipe (`rkt list | head`) is not an error.
          if (isErrno(e, 'EPIPE')) {
            if (fd === 1) process.exit(0);
            return false;
          }
          throw e;
        }
      }
      return true;
    },
  };
}
