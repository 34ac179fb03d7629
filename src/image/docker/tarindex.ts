// An index of a tar file's members (name → data offset and size), read
// header by header without reading the data, so `docker save` archives and
// OCI archives can be read at random. Handles ustar prefixes, GNU long
// names and pax `path`/`size`. Header checksums are verified.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { RktError } from '../../lib/errors.ts';

export interface TarMember {
  name: string;
  offset: number;
  size: number;
  type: string;
}

function octal(buf: Buffer, off: number, len: number): number {
  const first = buf[off] as number;
  if (first & 0x80) {
    // base-256
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + (buf[off + i] as number);
    return v;
  }
  const s = buf.subarray(off, off + len).toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return Number.NaN;
  return Number.parseInt(s, 8);
}

function cstr(buf: Buffer, off: number, len: number): string {
  const b = buf.subarray(off, off + len);
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
}

/** Parses the header block; undefined for an all-zero (end) block. Pure. */
export function parseHeader(h: Buffer): { name: string; size: number; type: string } | undefined {
  if (h.every((b) => b === 0)) return undefined;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  const want = octal(h, 148, 8);
  if (want !== sum) throw new RktError('BAD_ARCHIVE', 'corrupt tar archive: header checksum mismatch');
  const size = octal(h, 124, 12);
  if (!Number.isFinite(size)) throw new RktError('BAD_ARCHIVE', 'corrupt tar archive: bad member size');
  let name = cstr(h, 0, 100);
  const magic = h.subarray(257, 263).toString('latin1');
  if (magic.startsWith('ustar')) {
    const prefix = cstr(h, 345, 155);
    if (prefix !== '' && magic === 'ustar\u0000') name = `${prefix}/${name}`;
  }
  return { name, size, type: String.fromCharCode(h[156] as number) || '0' };
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.subarray(i, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Indexes the regular files of the tar at path. */
export function indexTar(path: string): Map<string, TarMember> {
  const fd = openSync(path, 'r');
  try {
    const total = fstatSync(fd).size;
    const out = new Map<string, TarMember>();
    const h = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    let pax: Record<string, string> = {};
    const read = (buf: Buffer, at: number) => {
      const n = readSync(fd, buf, 0, buf.length, at);
      if (n !== buf.length) throw new RktError('BAD_ARCHIVE', `truncated tar archive ${path}`);
    };
    for (;;) {
      if (pos + 512 > total) {
        if (pos === total) break; // no end marker: tolerated
        throw new RktError('BAD_ARCHIVE', `truncated tar archive ${path}`);
      }
      read(h, pos);
      const hd = parseHeader(h);
      if (!hd) break;
      const dataAt = pos + 512;
      const size = pax.size !== undefined ? Number(pax.size) : hd.size;
      if (dataAt + size > total) throw new RktError('BAD_ARCHIVE', `truncated tar archive ${path}: member "${hd.name}" runs past the end`);
      const next = dataAt + Math.ceil(size / 512) * 512;
      if (hd.type === 'L' || hd.type === 'x' || hd.type === 'g') {
        if (size > 1 << 20) throw new RktError('BAD_ARCHIVE', `corrupt tar archive ${path}: oversized extended header`);
        const data = Buffer.alloc(size);
        read(data, dataAt);
        if (hd.type === 'L') longName = cstr(data, 0, data.length);
        else if (hd.type === 'x') pax = parsePax(data);
        pos = next;
        continue;
      }
      const name = (pax.path ?? longName ?? hd.name).replace(/^\.\//, '').replace(/^\/+/, '');
      if (hd.type === '0' || hd.type === '\0' || hd.type === '7') out.set(name, { name, offset: dataAt, size, type: hd.type });
      longName = undefined;
      pax = {};
      pos = next;
    }
    return out;
  } catch (e) {
    if (e instanceof RktError) throw e;
    throw new RktError('BAD_ARCHIVE', `cannot read tar archive ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    closeSync(fd);
  }
}
