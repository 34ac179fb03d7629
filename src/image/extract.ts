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
  closeSync, constants, open, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync,
  openSync, rmSync, statSync, symlinkSync, chownSync, chmodSync, utimesSync, writeSync,
} from 'node:fs';
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
  /** Create files through libuv's pool, so that several extractions on one thread use several CPUs. */
  asyncOpen?: boolean;
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

// Who we are and what the umask takes away: a new file is already ours and
// has its mode when nothing differs, which saves an fchown and an fchmod per
// file (two of the six syscalls a small file costs).
const ME = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
const UMASK = currentUmask();

function currentUmask(): number {
  try {
    return process.umask();
  } catch {
    return 0o7777; // unknown (worker without access): always fchmod
  }
}

class Tree {
  readonly known = new Map<string, Kind>();
  /** Directories whose every ancestor is known to be a real directory. */
  readonly checked = new Set<string>();
  /** A setgid directory was made: new files and dirs below it take its group (and subdirs the bit), so ownership is then always set. */
  sawSetgid = false;
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
      const st = lstatSync(this.abs(rel));
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
    // Entries mostly follow their directory: once a directory's whole chain
    // was checked, its children need no walk up.
    const slash = rel.lastIndexOf('/');
    if (slash < 0 || this.checked.has(rel.slice(0, slash))) return;
    for (const p of ancestors(rel)) {
      const k = this.kind(p);
      if (k === 'd') {
        this.checked.add(p);
        continue;
      }
      if (k === undefined) {
        mkdirSync(this.abs(p), { mode: 0o755 });
        this.known.set(p, 'd');
        this.checked.add(p);
        continue;
      }
      throw new RktError('UNSAFE_PATH', `tar entry "${name}" lies under "${p}", which is ${k === 'l' ? 'a symlink' : 'not a directory'}`);
    }
  }

  /** rel is normalized (no '', '.', '..' parts): plain concatenation, no path.join. */
  abs(rel: string): string {
    return rel === '' ? this.dest : `${this.dest}/${rel}`;
  }

  /** Removes whatever is at rel so a new entry can take its place (later entries win). */
  clear(rel: string, keepDir: boolean): void {
    const k = this.kind(rel);
    if (k === undefined || (k === 'd' && keepDir)) return;
    rmSync(this.abs(rel), { recursive: true, force: true });
    this.known.delete(rel);
    this.checked.clear(); // rare: whatever was checked is checked again
    if (k === 'd') for (const key of this.known.keys()) if (key.startsWith(`${rel}/`)) this.known.delete(key);
  }
}

/** Consumes an entry's data; end() runs after the last chunk, abort() on failure. */
interface BodySink {
  data(chunk: Buffer): void;
  end(): void;
  abort(): void;
}

function fileSink(tree: Tree, rel: string, h: Header, fd: number, mode: number, plain: boolean): BodySink {
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    closeSync(fd);
  };
  return {
    data(buf) {
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    },
    end() {
      try {
        const uid = h.uid ?? 0;
        const gid = h.gid ?? 0;
        // chown before chmod: chown clears setuid/setgid bits.
        if (uid !== ME.uid || gid !== ME.gid || tree.layered || tree.sawSetgid) fchownSync(fd, uid, gid);
        if (!plain) fchmodSync(fd, mode);
        if (h.mtime) futimesSync(fd, h.mtime, h.mtime);
      } finally {
        close();
      }
      tree.known.set(rel, 'f');
    },
    abort: close,
  };
}

function writeFile(tree: Tree, rel: string, h: Header, asyncOpen: boolean): BodySink | Promise<BodySink> {
  const abs = tree.abs(rel);
  const mode = (h.mode ?? 0o644) & 0o7777;
  // Created private (0600) unless the final mode needs no fchmod: a reader never sees a half-written file with wider rights than it will have.
  const plain = (mode & 0o7000) === 0 && (mode & UMASK) === 0;
  const createMode = plain ? mode : 0o600;
  // asyncOpen: file creation (the costliest syscall here) runs on libuv's pool, so layers unpacked side by side use several CPUs.
  if (!asyncOpen) return fileSink(tree, rel, h, openSync(abs, O_NEW, createMode), mode, plain);
  return new Promise<BodySink>((resolve, reject) => open(abs, O_NEW, createMode, (e, fd) => (e ? reject(e) : resolve(fileSink(tree, rel, h, fd, mode, plain)))));
}

function captureSink(out: ExtractResult, name: string): BodySink {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    data(c) {
      size += c.length;
      if (size > MAX_CAPTURE) throw new RktError('BAD_ARCHIVE', `archive member "${name}" is too large`);
      chunks.push(c);
    },
    end() {
      out.captured.set(name, Buffer.concat(chunks));
    },
    abort() {},
  };
}

/**
 * Applies one entry. Returns undefined when its data (if any) is to be
 * skipped, else what consumes it. Throws on anything unsafe.
 */
function entry(tree: Tree, opts: ExtractOptions, h: Header, out: ExtractResult): BodySink | Promise<BodySink> | undefined {
  const name = normalizeEntryName(h.name);
  if (name === '') return undefined;
  let rel: string;
  if (opts.root === '') rel = name;
  else if (name === opts.root) rel = '';
  else if (name.startsWith(`${opts.root}/`)) rel = name.slice(opts.root.length + 1);
  else if (opts.capture?.includes(name) && (h.type === 'file' || h.type === 'contiguous-file')) {
    return captureSink(out, name);
  } else throw new RktError('BAD_ARCHIVE', `unexpected archive member "${h.name}" (an ACI holds only "manifest" and "rootfs/")`);

  if (rel === '') {
    // The root directory itself: take its metadata if it is a directory.
    if (h.type !== 'directory') throw new RktError('BAD_ARCHIVE', `archive member "${h.name}" must be a directory`);
    chownSync(tree.dest, h.uid ?? 0, h.gid ?? 0);
    chmodSync(tree.dest, (h.mode ?? 0o755) & 0o7777);
    if ((h.mode ?? 0) & 0o2000) tree.sawSetgid = true;
    return undefined;
  }
  if (opts.whiteouts === 'overlay') {
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    if (base.startsWith('.wh.')) {
      const dir = slash < 0 ? '' : rel.slice(0, slash);
      if (base === '.wh..wh..opq') {
        tree.parents(rel, h.name);
        if (!out.opaque.includes(dir)) out.opaque.push(dir);
        return undefined;
      }
      const target = dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`;
      if (base.length === 4 || base.slice(4) === '.' || base.slice(4) === '..') throw new RktError('UNSAFE_PATH', `invalid whiteout "${h.name}"`);
      tree.parents(target, h.name);
      tree.clear(target, false);
      execFileSync('mknod', ['-m', '000', tree.abs(target), 'c', '0', '0']);
      tree.known.set(target, 'o');
      return undefined;
    }
  }
  tree.parents(rel, h.name);
  const abs = tree.abs(rel);
  if (opts.whiteouts === 'overlay' && h.pax && h.type !== 'symlink') {
    for (const [k, v] of Object.entries(h.pax)) {
      if (k.startsWith('SCHILY.xattr.')) out.xattrs.push([rel, k.slice('SCHILY.xattr.'.length), Buffer.from(String(v), 'utf8')]);
    }
  }
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
      tree.clear(rel, false);
      return writeFile(tree, rel, h, opts.asyncOpen ?? false);
    case 'directory': {
      const k = tree.kind(rel);
      const dmode = (h.mode ?? 0o755) & 0o7777;
      const uid = h.uid ?? 0;
      const gid = h.gid ?? 0;
      if (k !== 'd') {
        tree.clear(rel, false);
        // As for files: made with its final mode when no chmod is needed, else private until then.
        const plain = (dmode & 0o7000) === 0 && (dmode & UMASK) === 0;
        mkdirSync(abs, { mode: plain ? dmode : 0o700 });
        tree.known.set(rel, 'd');
        if (uid !== ME.uid || gid !== ME.gid || tree.layered || tree.sawSetgid) chownSync(abs, uid, gid);
        if (!plain) chmodSync(abs, dmode);
      } else {
        chownSync(abs, uid, gid);
        chmodSync(abs, dmode);
      }
      if (dmode & 0o2000) tree.sawSetgid = true;
      if (h.mtime) tree.dirTimes.push([abs, h.mtime]);
      return undefined;
    }
    case 'symlink': {
      const target = h.linkname ?? '';
      if (target === '') throw new RktError('BAD_ARCHIVE', `symlink "${h.name}" has no target`);
      if (!symlinkStaysInside(rel, target)) throw new RktError('UNSAFE_PATH', `symlink "${h.name}" -> "${target}" points outside the image root`);
      tree.clear(rel, false);
      symlinkSync(target, abs);
      lchownSync(abs, h.uid ?? 0, h.gid ?? 0);
      if (h.mtime) lutimesSync(abs, h.mtime, h.mtime);
      tree.known.set(rel, 'l');
      return undefined;
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
      if (trel === rel) return undefined;
      tree.clear(rel, false);
      linkSync(tree.abs(trel), abs);
      tree.known.set(rel, 'f');
      return undefined;
    }
    case 'character-device':
    case 'block-device':
    case 'fifo': {
      tree.clear(rel, false);
      const mode = ((h.mode ?? 0o644) & 0o777).toString(8);
      if (h.type === 'fifo') execFileSync('mkfifo', ['-m', mode, abs]);
      else execFileSync('mknod', ['-m', mode, abs, h.type === 'block-device' ? 'b' : 'c', String(h.devmajor ?? 0), String(h.devminor ?? 0)]);
      lchownSync(abs, h.uid ?? 0, h.gid ?? 0);
      if (h.mtime) utimesSync(abs, h.mtime, h.mtime);
      tree.known.set(rel, 'o');
      return undefined;
    }
    default:
      // pax/gnu headers are consumed by tar-stream; anything else is not a filesystem object.
      return undefined;
  }
}

function classify(e: unknown): RktError {
  if (e instanceof RktError) return e;
  const msg = errMessage(e);
  if (/unexpected end|invalid tar|checksum|truncated|incorrect header|unexpected eof|zlib|decompress|invalid|header exceeds/i.test(msg)) {
    return new RktError('BAD_ARCHIVE', `corrupt or truncated archive: ${msg}`, { cause: e });
  }
  return new RktError('IO', `extracting archive: ${msg}`, { cause: e });
}

/**
 * Extracts a tar stream. Throws RktError; the caller removes `dest` on failure.
 * Entries go through tar-stream's event interface and are applied
 * synchronously (file data as it comes): no promise per entry or chunk.
 */
export async function extractTar(input: Readable, opts: ExtractOptions): Promise<ExtractResult> {
  mkdirSync(opts.dest, { recursive: true, mode: 0o755 });
  const tree = new Tree(opts.dest, opts.layered ?? false);
  if (statSync(opts.dest).mode & 0o2000) tree.sawSetgid = true;
  const out: ExtractResult = { captured: new Map(), entries: 0, opaque: [], xattrs: [] };
  const ex = tar.extract();
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    let current: BodySink | undefined;
    const fail = (e: unknown): void => {
      if (failed) return;
      failed = true;
      current?.abort();
      current = undefined;
      input.unpipe(ex);
      input.destroy();
      ex.destroy();
      reject(classify(e));
    };
    input.on('error', fail);
    ex.on('error', fail);
    ex.on('finish', () => {
      if (!failed) resolve();
    });
    ex.on('entry', (h, body, next) => {
      if (failed) return;
      out.entries++;
      body.on('error', fail);
      const attach = (sink: BodySink | undefined): void => {
        if (failed) {
          sink?.abort();
          return;
        }
        if (!sink) {
          body.on('end', () => next());
          body.resume();
          return;
        }
        current = sink;
        body.on('data', (c: unknown) => {
          if (failed) return;
          try {
            sink.data(c as Buffer);
          } catch (e) {
            fail(e);
          }
        });
        body.on('end', () => {
          if (failed) return;
          current = undefined;
          try {
            sink.end();
          } catch (e) {
            fail(e);
            return;
          }
          next();
        });
      };
      let act: ReturnType<typeof entry>;
      try {
        act = entry(tree, opts, h, out);
      } catch (e) {
        fail(e);
        return;
      }
      if (act instanceof Promise) act.then(attach, fail);
      else attach(act);
    });
    input.pipe(ex);
  });
  // Directory mtimes last: creating entries inside changed them.
  for (const [abs, t] of tree.dirTimes.reverse()) utimesSync(abs, t, t);
  return out;
}
