// The hash of a rendered tree, recorded at render time and re-computed by
// `rkt image verify`. Covers, in sorted path order, each entry's type, path,
// mode, owner, size and content (files), target (symlinks) or device number.
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

const BUF = Buffer.allocUnsafe(1 << 20);

function fileDigest(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, BUF, 0, BUF.length, null);
      if (n === 0) break;
      h.update(BUF.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export interface TreeSummary {
  hash: string;
  /** Bytes of regular file content (hard links counted once per name, as du --apparent-size -l). */
  size: number;
}

export function hashTree(root: string): TreeSummary {
  const h = createHash('sha512');
  let size = 0;
  const walk = (rel: string): void => {
    const names = readdirSync(rel === '' ? root : join(root, rel)).sort();
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, r);
      const st = lstatSync(abs);
      const meta = `${r}\0${(st.mode & 0o7777).toString(8)}\0${st.uid}\0${st.gid}`;
      if (st.isDirectory()) {
        h.update(`d\0${meta}\n`);
        walk(r);
      } else if (st.isFile()) {
        size += st.size;
        h.update(`f\0${meta}\0${st.size}\0${fileDigest(abs)}\n`);
      } else if (st.isSymbolicLink()) {
        h.update(`l\0${meta}\0${readlinkSync(abs)}\n`);
      } else {
        h.update(`o\0${meta}\0${st.mode & 0o170000}\0${st.rdev}\n`);
      }
    }
  };
  walk('');
  return { hash: `sha512-${h.digest('hex')}`, size };
}
