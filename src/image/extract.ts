// Streaming, safe tar extraction into a directory we own.
// Guarantees: no entry is written outside `dest`; nothing is written through
// a symlink (a parent that is not a real directory is refused); hard links
// point at regular files already inside `dest`; relative symlinks that climb
// out of the root are refused. Ownership, modes (setuid included, applied
// after chown), mtimes, device nodes and fifos are preserved.
// Synchronous fs calls on purpose: one entry at a time, no event-loop churn
// per small file; decompression still runs on libuv's thread pool meanwhile.
import { execFileSync } from 'node:child_process';
import {
  closeSync, constants, open, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, mkdirSync,
  openSync, rmSync, symlinkSync, chownSync, chmodSync, utimesSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';

type Header = tar.Header;
import { RktError, errMessage, isErrno } from '../lib/errors.ts';
import { ancestors, normalizeEntryName, symlinkStaysInside } from './tarpath.ts';

type Kind = 'd' | 'f' | 'l' | 'o';

export interface ExtractOptions {
  /** Directory receiving the tree (created if missing). */
  dest: string;
  /** Members under this top-level directory form the tree (`rootfs` for ACIs); '' = whole archive. */
  root: string;
  /** Top-level files to capture in memory instead of extracting (ACI: `manifest`). */
  capture?: readonly string[];
  /** The destination may already hold files (layering): replace them. */
  layered?: boolean;
  /** Docker/OCI layer: `.wh.NAME` becomes an overlay whiteout (char device 0/0), `.wh..wh..opq` marks its dir opaque (listed in the result). */
  whiteouts?: 'overlay';
}

export interface ExtractResult {
  captured: Map<string, Buffer>;
  entries: number;
  /** Directories (relative, '' = root) marked opaque by `.wh..wh..opq` (whiteouts: 'overlay'). */
  opaque: string[];
  /** Extended attributes from pax `SCHILY.xattr.*` records (whiteouts: 'overlay' only): [rel path, name, value]. */
  xattrs: [string, string, Buffer][];
}

const MAX_CAPTURE = 16 << 20;
const O_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

class Tree {
  readonly known = new Map<string, Kind>();
  readonly dirTimes: [string, Date][] = [];
  readonly dest: string;
  readonly layered: boolean;
  constructor(dest: string, layered: boolean) {
    this.dest = dest;
    this.layered = layered;
  }

  kind(rel: string): Kind | undefined {
    const k = this.known.get(rel);
    if (k !== undefined || !this.layered) return k;
    try {
      const st = lstatSync(join(this.dest, rel));
      const found: Kind = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o';
      this.known.set(rel, found);
      return found;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
  }

  /** Creates missing parents; refuses a parent that is a symlink or a file. */
  parents(rel: string, name: string): void {
    for (const p of ancestors(rel)) {
      const k = this.kind(p);
      if (k === 'd') continue;
      if (k === undefined) {
        mkdirSync(join(this.dest, p), { mode: 0o755 });
        this.known.set(p, 'd');
        continue;
      }
      throw new RktError('UNSAFE_PATH', `tar entry "${name}" lies under "${p}", which is ${k === 'l' ? 'a symlink' : 'not a directory'}`);
    }
  }

  /** Removes whatever is at rel so a new entry can take its place (later entries win). */
  clear(rel: string, keepDir: boolean): void {
    const k = this.kind(rel);
    if (k === undefined || (k === 'd' && keepDir)) return;
    rmSync(join(this.dest, rel), { recursive: true, force: true });
    this.known.delete(rel);
    if (k === 'd') for (const key of this.known.keys()) if (key.startsWith(`${rel}/`)) this.known.delete(key);
  }
}

async function writeFile(tree: Tree, rel: string, h: Header, body: Readable, asyncOpen = false): Promise<void> {
  const abs = join(tree.dest, rel);
  // asyncOpen: file creation (the costliest syscall here) runs on libuv's pool, so layers unpacked side by side use several CPUs.
  const fd = asyncOpen ? await new Promise<number>((resolve, reject) => open(abs, O_NEW, 0o600, (e, f) => (e ? reject(e) : resolve(f)))) : openSync(abs, O_NEW, 0o600);
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    }
    fchownSync(fd, h.uid ?? 0, h.gid ?? 0);
    fchmodSync(fd, (h.mode ?? 0o644) & 0o7777);
    if (h.mtime) futimesSync(fd, h.mtime, h.mtime);
  } finally {
    closeSync(fd);
  }
  tree.known.set(rel, 'f');
}

async function drain(body: Readable): Promise<void> {
  for await (const _ of body); // eslint-disable-line @typescript-eslint/no-unused-vars
}

async function capture(body: Readable, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += (c as Buffer).length;
    if (size > MAX_CAPTURE) throw new RktError('BAD_ARCHIVE', `archive member "${name}" is too large`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function entry(tree: Tree, opts: ExtractOptions, h: Header, body: Readable, out: ExtractResult): Promise<void> {
  const name = normalizeEntryName(h.name);
  if (name === '') return drain(body);
  let rel: string;
  if (opts.root === '') rel = name;
  else if (name === opts.root) rel = '';
  else if (name.startsWith(`${opts.root}/`)) rel = name.slice(opts.root.length + 1);
  else if (opts.capture?.includes(name) && (h.type === 'file' || h.type === 'contiguous-file')) {
    out.captured.set(name, await capture(body, name));
    return;
  } else throw new RktError('BAD_ARCHIVE', `unexpected archive member "${h.name}" (an ACI holds only "manifest" and "rootfs/")`);

  if (rel === '') {
    // The root directory itself: take its metadata if it is a directory.
    if (h.type !== 'directory') throw new RktError('BAD_ARCHIVE', `archive member "${h.name}" must be a directory`);
    chownSync(tree.dest, h.uid ?? 0, h.gid ?? 0);
    chmodSync(tree.dest, (h.mode ?? 0o755) & 0o7777);
    return drain(body);
  }
  if (opts.whiteouts === 'overlay') {
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    if (base.startsWith('.wh.')) {
      const dir = slash < 0 ? '' : rel.slice(0, slash);
      if (base === '.wh..wh..opq') {
        tree.parents(rel, h.name);
        if (!out.opaque.includes(dir)) out.opaque.push(dir);
        return drain(body);
      }
      const target = dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`;
      if (base.length === 4 || base.slice(4) === '.' || base.slice(4) === '..') throw new RktError('UNSAFE_PATH', `invalid whiteout "${h.name}"`);
      tree.parents(target, h.name);
      tree.clear(target, false);
      execFileSync('mknod', ['-m', '000', join(tree.dest, target), 'c', '0', '0']);
      tree.known.set(target, 'o');
      return drain(body);
    }
  }
  tree.parents(rel, h.name);
  const abs = join(tree.dest, rel);
  if (opts.whiteouts === 'overlay' && h.pax && h.type !== 'symlink') {
    for (const [k, v] of Object.entries(h.pax)) {
      if (k.startsWith('SCHILY.xattr.')) out.xattrs.push([rel, k.slice('SCHILY.xattr.'.length), Buffer.from(String(v), 'utf8')]);
    }
  }
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
      tree.clear(rel, false);
      return writeFile(tree, rel, h, body, opts.whiteouts === 'overlay');
    case 'directory': {
      const k = tree.kind(rel);
      if (k !== 'd') {
        tree.clear(rel, false);
        mkdirSync(abs, { mode: 0o700 });
        tree.known.set(rel, 'd');
      }
      chownSync(abs, h.uid ?? 0, h.gid ?? 0);
      chmodSync(abs, (h.mode ?? 0o755) & 0o7777);
      if (h.mtime) tree.dirTimes.push([abs, h.mtime]);
      return drain(body);
    }
    case 'symlink': {
      const target = h.linkname ?? '';
      if (target === '') throw new RktError('BAD_ARCHIVE', `symlink "${h.name}" has no target`);
      if (!symlinkStaysInside(rel, target)) throw new RktError('UNSAFE_PATH', `symlink "${h.name}" -> "${target}" points outside the image root`);
      tree.clear(rel, false);
      symlinkSync(target, abs);
      lchownSync(abs, h.uid ?? 0, h.gid ?? 0);
      tree.known.set(rel, 'l');
      return drain(body);
    }
    case 'link': {
      const raw = h.linkname ?? '';
      const tname = normalizeEntryName(raw);
      let trel: string;
      if (opts.root === '') trel = tname;
      else if (tname.startsWith(`${opts.root}/`)) trel = tname.slice(opts.root.length + 1);
      else throw new RktError('UNSAFE_PATH', `hard link "${h.name}" -> "${raw}" points outside the image root`);
      tree.parents(trel, raw);
      if (tree.kind(trel) !== 'f') throw new RktError('UNSAFE_PATH', `hard link "${h.name}" -> "${raw}" does not point at a regular file in the image`);
      if (trel === rel) return drain(body);
      tree.clear(rel, false);
      linkSync(join(tree.dest, trel), abs);
      tree.known.set(rel, 'f');
      return drain(body);
    }
    case 'character-device':
    case 'block-device':
    case 'fifo': {
      tree.clear(rel, false);
      const mode = ((h.mode ?? 0o644) & 0o777).toString(8);
      if (h.type === 'fifo') execFileSync('mkfifo', ['-m', mode, abs]);
      else execFileSync('mknod', ['-m', mode, abs, h.type === 'block-device' ? 'b' : 'c', String(h.devmajor ?? 0), String(h.devminor ?? 0)]);
      lchownSync(abs, h.uid ?? 0, h.gid ?? 0);
      tree.known.set(rel, 'o');
      return drain(body);
    }
    default:
      // pax/gnu headers are consumed by tar-stream; anything else is not a filesystem object.
      return drain(body);
  }
}

/** Extracts a tar stream. Throws RktError; the caller removes `dest` on failure. */
export async function extractTar(input: Readable, opts: ExtractOptions): Promise<ExtractResult> {
  mkdirSync(opts.dest, { recursive: true, mode: 0o755 });
  const tree = new Tree(opts.dest, opts.layered ?? false);
  const out: ExtractResult = { captured: new Map(), entries: 0, opaque: [], xattrs: [] };
  const ex = tar.extract();
  input.on('error', (e) => ex.destroy(e));
  input.pipe(ex);
  try {
    for await (const e of ex) {
      out.entries++;
      await entry(tree, opts, e.header, e as unknown as Readable, out);
    }
  } catch (e) {
    input.unpipe(ex);
    input.destroy();
    if (e instanceof RktError) throw e;
    const msg = errMessage(e);
    if (/unexpected end|invalid tar|checksum|truncated|incorrect header|unexpected eof|zlib|decompress|invalid/i.test(msg)) {
      throw new RktError('BAD_ARCHIVE', `corrupt or truncated archive: ${msg}`, { cause: e });
    }
    throw new RktError('IO', `extracting archive: ${msg}`, { cause: e });
  }
  // Directory mtimes last: creating entries inside changed them.
  for (const [abs, t] of tree.dirTimes.reverse()) utimesSync(abs, t, t);
  return out;
}
