// The image store under DATA/cas (layout after rkt's):
//   blob/sha512/<2 hex>/<key>   uncompressed image tars, content-addressed
//   tree/<treeID>/{rootfs,hash,rendered}   rendered root filesystems
//   db/index.sqlite             image index (node:sqlite, WAL, busy timeout)
//   tmp/<pid>-<rand>/           work in progress; nothing there is visible
// Commit protocol: work in tmp, then under the index's write lock rename
// blob and tree into place and insert the row. A crash leaves at worst an
// unindexed blob/tree or a tmp dir of a dead process; `image gc` removes both.
import { mkdirSync, renameSync, rmSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync as DB } from 'node:sqlite';
import { RktError, isErrno } from '../../lib/errors.ts';
import type { ImageManifest, Label } from '../aci/manifest.ts';

export interface ImageRow {
  key: string;
  name: string;
  manifest: ImageManifest;
  /** Milliseconds since the epoch. */
  importTime: number;
  lastUsed: number;
  /** Size of the blob (uncompressed ACI) in bytes. */
  size: number;
  treeId: string | null;
  treeSize: number;
  /** 'aci' (native), 'docker' (converted Docker/OCI image), 'layer' (one of its layers, hidden from listings). */
  kind: string;
}

export interface RemoteRow {
  url: string;
  sigUrl: string | null;
  etag: string | null;
  key: string;
  cacheMaxAge: number | null;
  downloadTime: number;
}

/** Bumped when SCHEMA or a migration changes. */
const SCHEMA_VERSION = 2;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  key TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  manifest TEXT NOT NULL,
  import_time INTEGER NOT NULL,
  last_used INTEGER NOT NULL,
  size INTEGER NOT NULL,
  tree_id TEXT,
  tree_size INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS images_name ON images(name);
CREATE TABLE IF NOT EXISTS remotes (
  url TEXT PRIMARY KEY,
  sig_url TEXT,
  etag TEXT,
  key TEXT NOT NULL,
  cache_max_age INTEGER,
  download_time INTEGER NOT NULL
);
`;

interface RawImage {
  key: string;
  name: string;
  manifest: string;
  import_time: number;
  last_used: number;
  size: number;
  tree_id: string | null;
  tree_size: number;
  kind?: string;
}

function toRow(r: RawImage): ImageRow {
  return {
    key: r.key,
    name: r.name,
    manifest: JSON.parse(r.manifest) as ImageManifest,
    importTime: r.import_time,
    lastUsed: r.last_used,
    size: r.size,
    treeId: r.tree_id,
    treeSize: r.tree_size,
    kind: r.kind ?? 'aci',
  };
}

// node:sqlite is loaded on first use only (keeps `rkt version` lean).
let sqlite: typeof import('node:sqlite') | undefined;
function sqliteModule(): typeof import('node:sqlite') {
  sqlite ??= process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  return sqlite;
}

// node:crypto costs ~9 ms to load; the common paths (list, run of a stored image) do without it.
const nodeCrypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto') as typeof import('node:crypto');

export function treeIdFor(depKeys: readonly string[]): string {
  return `deps-sha512-${nodeCrypto().createHash('sha512').update(depKeys.join(',')).digest('hex').slice(0, 64)}`;
}

export class Store implements Disposable {
  readonly casDir: string;
  readonly db: DB;

  private constructor(casDir: string, db: DB) {
    this.casDir = casDir;
    this.db = db;
  }

  /** Opens (creating if needed) the store under `dataDir/cas`. */
  static open(dataDir: string): Store {
    const casDir = join(dataDir, 'cas');
    const dbDir = join(casDir, 'db');
    try {
      mkdirSync(dbDir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new RktError('IO', `cannot create the image store in ${casDir}: ${(e as Error).message}`, { cause: e });
    }
    const { DatabaseSync } = sqliteModule();
    let db: DB;
    try {
      db = new DatabaseSync(join(dbDir, 'index.sqlite'), { timeout: 30_000 });
      db.exec('PRAGMA synchronous=NORMAL');
      // WAL mode and the schema persist in the file: set up once, then
      // recognised by user_version (saves ~1 ms on every open).
      if ((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version !== SCHEMA_VERSION) {
        db.exec('PRAGMA journal_mode=WAL');
        db.exec(SCHEMA);
        // Migration: the kind column (Docker images and their layers).
        const cols = db.prepare('PRAGMA table_info(images)').all() as { name: string }[];
        if (!cols.some((c) => c.name === 'kind')) {
          try {
            db.exec("ALTER TABLE images ADD COLUMN kind TEXT NOT NULL DEFAULT 'aci'");
          } catch (e) {
            if (!/duplicate column/i.test((e as Error).message)) throw e;
          }
        }
        db.exec(`PRAGMA user_version=${SCHEMA_VERSION}`);
      }
    } catch (e) {
      throw new RktError('IO', `cannot open the image index in ${dbDir}: ${(e as Error).message}`, { cause: e });
    }
    return new Store(casDir, db);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  blobPath(key: string): string {
    const hex = key.slice('sha512-'.length);
    return join(this.casDir, 'blob', 'sha512', hex.slice(0, 2), key);
  }

  treeDir(treeId: string): string {
    return join(this.casDir, 'tree', treeId);
  }

  /** A fresh work dir under cas/tmp, named after this process so gc can tell if it is abandoned. */
  makeTmpDir(): string {
    const dir = join(this.casDir, 'tmp', `${process.pid}-${nodeCrypto().randomBytes(6).toString('hex')}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** Runs fn inside an immediate (write-locked) transaction. */
  write<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  get(key: string): ImageRow | undefined {
    const r = this.db.prepare('SELECT * FROM images WHERE key = ?').get(key) as RawImage | undefined;
    return r && toRow(r);
  }

  list(): ImageRow[] {
    return (this.db.prepare('SELECT * FROM images').all() as unknown as RawImage[]).map(toRow);
  }

  /** Images whose key starts with prefix (`sha512-…`). */
  byPrefix(prefix: string): ImageRow[] {
    const upper = `${prefix}\uffff`;
    return (this.db.prepare('SELECT * FROM images WHERE key >= ? AND key < ?').all(prefix, upper) as unknown as RawImage[]).map(toRow);
  }

  /**
   * Images named `name` whose labels include all of `labels`. A `version`
   * label of `latest` also matches images without that version (appc's
   * "latest" semantics): then the most recently imported wins.
   */
  byName(name: string, labels: readonly Label[] = []): ImageRow[] {
    const rows = (this.db.prepare('SELECT * FROM images WHERE name = ? ORDER BY import_time DESC').all(name) as unknown as RawImage[]).map(toRow);
    return rows.filter((r) =>
      labels.every((l) => {
        const have = r.manifest.labels?.find((x) => x.name === l.name)?.value;
        if (l.name === 'version' && l.value === 'latest') return true;
        return have === l.value;
      }),
    );
  }

  remote(url: string): RemoteRow | undefined {
    const r = this.db.prepare('SELECT * FROM remotes WHERE url = ?').get(url) as
      | { url: string; sig_url: string | null; etag: string | null; key: string; cache_max_age: number | null; download_time: number }
      | undefined;
    return r && { url: r.url, sigUrl: r.sig_url, etag: r.etag, key: r.key, cacheMaxAge: r.cache_max_age, downloadTime: r.download_time };
  }

  putRemote(r: RemoteRow): void {
    this.db
      .prepare('INSERT OR REPLACE INTO remotes (url, sig_url, etag, key, cache_max_age, download_time) VALUES (?, ?, ?, ?, ?, ?)')
      .run(r.url, r.sigUrl, r.etag, r.key, r.cacheMaxAge, r.downloadTime);
  }

  touch(key: string, when = Date.now()): void {
    this.db.prepare('UPDATE images SET last_used = ? WHERE key = ?').run(when, key);
  }

  /**
   * Records a use of the image, like relatime: not again within a minute of
   * the last one. A write costs ~4 ms per `rkt run` (the transaction, then
   * the WAL checkpoint when the connection closes).
   */
  markUsed(row: ImageRow, when = Date.now()): void {
    if (when - row.lastUsed < 60_000 && when >= row.lastUsed) return;
    this.touch(row.key, when);
  }

  /**
   * Moves a sealed tree (tmp dir with rootfs/, hash, rendered) into the tree
   * store as treeId and records it for the image, under the write lock. A
   * racing process that rendered the same tree first wins; ours is left in tmp.
   */
  installTree(tmpTree: string, treeId: string, key: string, size: number): string {
    const dest = this.treeDir(treeId);
    this.write(() => {
      if (!existsSync(join(dest, 'rendered'))) {
        rmSync(dest, { recursive: true, force: true });
        mkdirSync(join(dest, '..'), { recursive: true });
        renameSync(tmpTree, dest);
      }
      this.setTree(key, treeId, size);
    });
    return dest;
  }

  /** Forgets an image's rendered tree (it was removed; renderImage makes it again). */
  clearTree(key: string): void {
    this.db.prepare('UPDATE images SET tree_id = NULL, tree_size = 0 WHERE key = ?').run(key);
  }

  /** Records a rendered tree for an image. */
  setTree(key: string, treeId: string, treeSize: number): void {
    this.db.prepare('UPDATE images SET tree_id = ?, tree_size = ? WHERE key = ?').run(treeId, treeSize, key);
  }

  /**
   * Commits an imported image: moves the blob (and an already rendered tree)
   * out of tmp into place and indexes it, all under the write lock. If the
   * image is already present, the work is discarded and the existing row kept.
   */
  commit(opts: { key: string; manifest: ImageManifest; blobTmp: string; size: number; tree?: { tmpDir: string; id: string; size: number } }): { row: ImageRow; existed: boolean } {
    return this.write(() => {
      const existing = this.get(opts.key);
      if (existing) return { row: existing, existed: true };
      const blob = this.blobPath(opts.key);
      mkdirSync(join(blob, '..'), { recursive: true });
      renameSync(opts.blobTmp, blob);
      let treeId: string | null = null;
      let treeSize = 0;
      if (opts.tree) {
        const dest = this.treeDir(opts.tree.id);
        mkdirSync(join(dest, '..'), { recursive: true });
        if (existsSync(join(dest, 'rendered'))) {
          treeId = opts.tree.id;
        } else {
          rmSync(dest, { recursive: true, force: true });
          renameSync(opts.tree.tmpDir, dest);
          treeId = opts.tree.id;
        }
        treeSize = opts.tree.size;
      }
      const now = Date.now();
      this.db
        .prepare('INSERT INTO images (key, name, manifest, import_time, last_used, size, tree_id, tree_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(opts.key, opts.manifest.name, JSON.stringify(opts.manifest), now, now, opts.size, treeId, treeSize);
      return { row: this.get(opts.key) as ImageRow, existed: false };
    });
  }

  /** Removes an image's row, blob and tree (if no other image uses the tree). */
  /**
   * Removes an image. Trees that `inUse` names (pods not yet garbage mount
   * them) stay on disk without an index entry until `image gc` sweeps them.
   */
  remove(key: string, inUse: (treeId: string) => boolean = () => false): boolean {
    return this.write(() => {
      const row = this.get(key);
      if (!row) return false;
      this.db.prepare('DELETE FROM images WHERE key = ?').run(key);
      this.db.prepare('DELETE FROM remotes WHERE key = ?').run(key);
      rmSync(this.blobPath(key), { force: true });
      if (row.treeId) {
        const users = this.db.prepare('SELECT count(*) AS n FROM images WHERE tree_id = ?').get(row.treeId) as { n: number };
        if (users.n === 0 && !inUse(row.treeId)) this.removeTree(row.treeId);
      }
      if (row.kind !== 'aci') this.reclaimLayers(inUse);
      return true;
    });
  }

  /** Removes layer entries (kind 'layer') that no image depends on, with their trees. Call inside write(). */
  reclaimLayers(inUse: (treeId: string) => boolean = () => false): string[] {
    const rows = this.list();
    const byKey = new Map(rows.map((r) => [r.key, r]));
    const live = new Set<string>();
    const visit = (r: ImageRow): void => {
      for (const d of r.manifest.dependencies ?? []) {
        const k = d.imageID?.slice(0, 'sha512-'.length + 64);
        const dep = k ? byKey.get(k) : undefined;
        if (dep && dep.kind === 'layer' && !live.has(dep.key)) {
          live.add(dep.key);
          visit(dep);
        }
      }
    };
    for (const r of rows) if (r.kind !== 'layer') visit(r);
    const removed: string[] = [];
    for (const r of rows) {
      if (r.kind !== 'layer' || live.has(r.key)) continue;
      this.db.prepare('DELETE FROM images WHERE key = ?').run(r.key);
      removed.push(r.key);
    }
    if (removed.length > 0) {
      const used = new Set((this.db.prepare('SELECT tree_id FROM images WHERE tree_id IS NOT NULL').all() as { tree_id: string }[]).map((t) => t.tree_id));
      for (const key of removed) {
        const t = byKey.get(key)?.treeId;
        if (t && !used.has(t)) {
          used.add(t);
          if (!inUse(t)) this.removeTree(t);
        }
      }
    }
    return removed;
  }

  /** Removes a tree dir: first renamed aside (atomic disappearance), then deleted. */
  removeTree(treeId: string): void {
    const dir = this.treeDir(treeId);
    const aside = join(this.casDir, 'tmp', `${process.pid}-rm-${nodeCrypto().randomBytes(4).toString('hex')}`);
    try {
      mkdirSync(join(this.casDir, 'tmp'), { recursive: true });
      renameSync(dir, aside);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return;
      throw e;
    }
    rmSync(aside, { recursive: true, force: true });
  }

  blobSize(key: string): number {
    try {
      return statSync(this.blobPath(key)).size;
    } catch {
      return 0;
    }
  }
}
