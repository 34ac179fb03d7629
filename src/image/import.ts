// Imports an ACI file into the store in one pass: decompress → (SHA-512 of
// the uncompressed tar, blob copy, extraction of rootfs/) → validate →
// commit. Nothing becomes visible unless every step succeeded.
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { RktError } from '../lib/errors.ts';
import { keyFromDigest } from './aci/id.ts';
import { checkOsArch, parseImageManifest, type ImageManifest } from './aci/manifest.ts';
import { openDecompressed } from './decompress.ts';
import { extractTar } from './extract.ts';
import { hashTree } from './store/treehash.ts';
import { treeIdFor, type ImageRow, type Store } from './store/store.ts';

/** Passes bytes through while hashing them and copying them to a file. */
class HashTee extends Transform {
  readonly hash = createHash('sha512');
  size = 0;
  private readonly fd: number;
  constructor(path: string) {
    super({ highWaterMark: 1 << 20 });
    this.fd = openSync(path, 'wx', 0o644);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    cb(null, chunk);
  }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    cb(err);
  }
}

/** Drops everything not in the path whitelist (directories on the way to a listed path stay). */
export function applyPathWhitelist(root: string, whitelist: readonly string[]): void {
  const keep = new Set(whitelist.map((p) => p.replace(/^\/+|\/+$/g, '')));
  const dirsToKeep = new Set<string>();
  for (const p of keep) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirsToKeep.add(parts.slice(0, i).join('/'));
  }
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, r);
      if (keep.has(r)) continue;
      if (dirsToKeep.has(r) && lstatSync(abs).isDirectory()) {
        walk(r);
        continue;
      }
      rmSync(abs, { recursive: true, force: true });
    }
  };
  walk('');
}

/** Writes the tree's hash and the `rendered` marker; returns its content size. */
export function sealTree(treeDir: string): number {
  const { hash, size } = hashTree(join(treeDir, 'rootfs'));
  writeFileSync(join(treeDir, 'hash'), hash);
  writeFileSync(join(treeDir, 'rendered'), '');
  return size;
}

export interface ImportResult {
  row: ImageRow;
  manifest: ImageManifest;
  existed: boolean;
}

export interface ImportOptions {
  checkOsArch?: boolean;
  /** Awaited before anything is committed (signature verification running alongside). */
  gate?: Promise<unknown>;
  /** Called with the manifest before commit; throw to refuse the image. */
  check?: (m: ImageManifest) => void;
}

export async function importAci(store: Store, rawPath: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const tmp = store.makeTmpDir();
  try {
    const blobTmp = join(tmp, 'blob');
    const treeTmp = join(tmp, 'tree');
    const tee = new HashTee(blobTmp);
    const source = openDecompressed(rawPath);
    source.on('error', (e) => tee.destroy(e));
    const { captured } = await extractTar(source.pipe(tee), { dest: join(treeTmp, 'rootfs'), root: 'rootfs', capture: ['manifest'] });
    // The ID covers every byte, also any padding after the tar's end marker.
    if (!tee.readableEnded) {
      await new Promise<void>((resolve, reject) => {
        tee.once('end', resolve);
        tee.once('error', reject);
        tee.resume();
      });
    }
    tee.destroy();
    const raw = captured.get('manifest');
    if (!raw) throw new RktError('INVALID_IMAGE', 'invalid image: the archive has no "manifest"');
    const manifest = parseImageManifest(raw);
    if (opts.checkOsArch !== false) checkOsArch(manifest);
    opts.check?.(manifest);
    await opts.gate;
    const key = keyFromDigest(tee.hash.digest('hex'));
    const existing = store.get(key);
    if (existing) return { row: existing, manifest: existing.manifest, existed: true };

    const hasDeps = (manifest.dependencies?.length ?? 0) > 0;
    let tree: { tmpDir: string; id: string; size: number } | undefined;
    if (!hasDeps) {
      if (manifest.pathWhitelist?.length) applyPathWhitelist(join(treeTmp, 'rootfs'), manifest.pathWhitelist);
      tree = { tmpDir: treeTmp, id: treeIdFor([key]), size: sealTree(treeTmp) };
    }
    const { row, existed } = store.commit({ key, manifest, blobTmp, size: tee.size, ...(tree ? { tree } : {}) });
    return { row, manifest, existed };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
