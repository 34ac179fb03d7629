// ACI fixtures built at test time (no internet): a busybox image from
// Debian's busybox-static, tiny or padded variants, compressed variants, and
// deliberately broken archives (built with tar-stream, which writes whatever
// header it is given).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pack, type Header } from 'tar-stream';

type Headers = Partial<Header> & Pick<Header, 'name'>;

export const BUSYBOX = '/bin/busybox';
export const DEFAULT_NAME = 'example.com/rkt-test/busybox';
export const DEFAULT_VERSION = '1.0.0';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz';
const COMPRESSOR: Record<Exclude<Compression, 'none'>, { cmd: string; ext: string }> = {
  gzip: { cmd: 'gzip', ext: '.gz' },
  bzip2: { cmd: 'bzip2', ext: '.bz2' },
  xz: { cmd: 'xz', ext: '.xz' },
};

export type FileSpec =
  | string
  | Buffer
  | { content: string | Buffer; mode?: number }
  | { symlink: string }
  | { dir: true; mode?: number };

export interface Dependency {
  imageName: string;
  imageID?: string;
  labels?: { name: string; value: string }[];
  size?: number;
}

export interface AciOptions {
  name?: string;
  /** `version` label; null leaves it out. */
  version?: string | null;
  os?: string;
  arch?: string;
  /** More labels, after version/os/arch. */
  labels?: { name: string; value: string }[];
  /** app.exec; null leaves the app section out (a base/dependency image). */
  exec?: string[] | null;
  /** Put busybox and its applet links in the rootfs (default true). */
  busybox?: boolean;
  /** Extra rootfs entries, by path relative to the rootfs. */
  files?: Record<string, FileSpec>;
  dependencies?: Dependency[];
  pathWhitelist?: string[];
  annotations?: { name: string; value: string }[];
  /** Last-chance edit of the manifest object. */
  editManifest?: (m: Record<string, unknown>) => Record<string, unknown>;
  /**
   * Make a big image: `bytes` of padding in files of `fileSize` (default
   * 4 MiB) under /pad. `random` does not compress; `hex` (default) compresses
   * about 2:1, like typical binaries.
   */
  pad?: { bytes: number; fileSize?: number; kind?: 'random' | 'hex' };
  compression?: Compression;
  /** File name (default derived from name and version). */
  fileName?: string;
}

export interface Aci {
  /** The ACI file (possibly compressed). */
  path: string;
  /** The uncompressed tar (same as `path` when uncompressed). */
  tarPath: string;
  compression: Compression;
  /** Hex SHA-512 of the uncompressed tar (128 hex). */
  sha512: string;
  /** The store key / full ID: `sha512-` + 64 hex. */
  id: string;
  /** What `rkt fetch` prints: `sha512-` + 32 hex. */
  shortId: string;
  /** What `rkt image list` shows: `sha512-` + 12 hex. */
  listId: string;
  name: string;
  version: string | null;
  manifest: Record<string, unknown>;
  /** Size of the uncompressed tar in bytes. */
  size: number;
}

export function idsFromSha512(hex: string): { id: string; shortId: string; listId: string } {
  return { id: `sha512-${hex.slice(0, 64)}`, shortId: `sha512-${hex.slice(0, 32)}`, listId: `sha512-${hex.slice(0, 12)}` };
}

export async function sha512File(path: string): Promise<string> {
  const h = createHash('sha512');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function makeManifest(o: AciOptions = {}): Record<string, unknown> {
  const labels: { name: string; value: string }[] = [];
  const version = o.version === undefined ? DEFAULT_VERSION : o.version;
  if (version !== null) labels.push({ name: 'version', value: version });
  labels.push({ name: 'os', value: o.os ?? 'linux' }, { name: 'arch', value: o.arch ?? 'amd64' }, ...(o.labels ?? []));
  let m: Record<string, unknown> = {
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name: o.name ?? DEFAULT_NAME,
    labels,
  };
  const exec = o.exec === undefined ? ['/bin/sh'] : o.exec;
  if (exec !== null) m.app = { exec, user: '0', group: '0' };
  if (o.dependencies) m.dependencies = o.dependencies;
  if (o.pathWhitelist) m.pathWhitelist = o.pathWhitelist;
  if (o.annotations) m.annotations = o.annotations;
  if (o.editManifest) m = o.editManifest(m);
  return m;
}

function writeSpec(root: string, rel: string, spec: FileSpec): void {
  const abs = join(root, rel);
  mkdirSync(dirname(abs), { recursive: true });
  if (typeof spec === 'string' || Buffer.isBuffer(spec)) {
    writeFileSync(abs, spec);
    chmodSync(abs, 0o644);
  } else if ('symlink' in spec) {
    symlinkSync(spec.symlink, abs);
  } else if ('dir' in spec) {
    mkdirSync(abs, { recursive: true });
    chmodSync(abs, spec.mode ?? 0o755);
  } else {
    writeFileSync(abs, spec.content);
    chmodSync(abs, spec.mode ?? 0o644);
  }
}

function writePadding(rootfs: string, pad: NonNullable<AciOptions['pad']>): void {
  const fileSize = pad.fileSize ?? 4 * 1024 * 1024;
  const dir = join(rootfs, 'pad');
  mkdirSync(dir, { recursive: true });
  let left = pad.bytes;
  for (let i = 0; left > 0; i++) {
    const n = Math.min(fileSize, left);
    const data = pad.kind === 'random' ? randomBytes(n) : Buffer.from(randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n));
    writeFileSync(join(dir, `pad-${String(i).padStart(5, '0')}.bin`), data);
    left -= n;
  }
}

function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** Compresses `tar` with gzip/bzip2/xz into `out` (child process; streaming). */
export function compressFile(tar: string, out: string, kind: Exclude<Compression, 'none'>): void {
  const c = COMPRESSOR[kind];
  execFileSync('sh', ['-c', `${c.cmd} -c -- "$1" > "$2"`, 'sh', tar, out], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * Builds an ACI in `dir`: a busybox rootfs (unless `busybox: false`), extra
 * files, the manifest, packed by GNU tar (`manifest` first, then `rootfs/`,
 * numeric owners 0:0, sorted, fixed mtime, so the same options give the
 * same ID).
 */
export async function buildAci(dir: string, o: AciOptions = {}): Promise<Aci> {
  const manifest = makeManifest(o);
  const name = manifest.name as string;
  const version = o.version === undefined ? DEFAULT_VERSION : o.version;
  const stage = mkdtempSync(join(dir, '.aci-stage-'));
  try {
    const rootfs = join(stage, 'rootfs');
    mkdirSync(rootfs, { recursive: true });
    chmodSync(rootfs, 0o755);
    if (o.busybox ?? true) {
      mkdirSync(join(rootfs, 'bin'), { recursive: true });
      copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
      chmodSync(join(rootfs, 'bin/busybox'), 0o755);
      const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && l !== 'linuxrc' && l !== 'bin/busybox' && !l.includes('..'));
      for (const a of applets) {
        const abs = join(rootfs, a);
        mkdirSync(dirname(abs), { recursive: true });
        symlinkSync('/bin/busybox', abs);
      }
      writeSpec(rootfs, 'etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
      writeSpec(rootfs, 'etc/group', 'root:x:0:\nnobody:x:65534:\n');
      writeSpec(rootfs, 'root', { dir: true, mode: 0o700 });
      writeSpec(rootfs, 'tmp', { dir: true, mode: 0o1777 });
    }
    for (const [rel, spec] of Object.entries(o.files ?? {})) writeSpec(rootfs, rel, spec);
    if (o.pad) writePadding(rootfs, o.pad);
    writeFileSync(join(stage, 'manifest'), `${JSON.stringify(manifest, null, 2)}\n`);
    chmodSync(join(stage, 'manifest'), 0o644);

    const base = o.fileName ?? `${safeFileName(name)}${version ? `-${version}` : ''}.aci`;
    const tarPath = join(dir, base);
    execFileSync(
      'tar',
      ['--create', `--file=${tarPath}`, '--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@1577836800', `--directory=${stage}`, 'manifest', 'rootfs'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const sha512 = await sha512File(tarPath);
    const size = Number(execFileSync('stat', ['-c', '%s', tarPath], { encoding: 'utf8' }).trim());
    const compression = o.compression ?? 'none';
    let path = tarPath;
    if (compression !== 'none') {
      path = `${tarPath}${COMPRESSOR[compression].ext}`;
      compressFile(tarPath, path, compression);
    }
    return { path, tarPath, compression, sha512, ...idsFromSha512(sha512), name, version, manifest, size };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** A compressed copy of an existing ACI (same tar, same ID). */
export function compressAci(aci: Aci, kind: Exclude<Compression, 'none'>, out?: string): Aci {
  const path = out ?? `${aci.tarPath}${COMPRESSOR[kind].ext}`;
  compressFile(aci.tarPath, path, kind);
  return { ...aci, path, compression: kind };
}

// ---------------------------------------------------------------------------
// Bad archives

export interface TarEntry {
  header: Headers;
  body?: string | Buffer;
}

/** Packs entries exactly as given (no path cleaning) into a tar Buffer. */
export async function tarBuffer(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const h: Headers = { mode: 0o644, uid: 0, gid: 0, mtime: new Date(1577836800000), ...e.header };
    if (h.type === 'directory') h.mode = e.header.mode ?? 0o755;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (h.type === undefined || h.type === 'file') p.entry(h, e.body ?? '', cb);
      else p.entry(h, cb);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Where the `absolute-path` bad archive tries to write; tests check it never appears. */
export const ABS_ESCAPE_PATH = '/rkt-test-abs-escape/path';

export const BAD_KINDS = [
  'dotdot-path',
  'absolute-path',
  'symlink-escape',
  'hardlink-escape',
  'no-manifest',
  'manifest-not-json',
  'bad-name',
  'relative-exec',
  'wrong-ackind',
  'wrong-os',
  'wrong-arch',
  'truncated',
  'not-a-tar',
] as const;
export type BadKind = (typeof BAD_KINDS)[number];

export const BAD_DESCRIPTIONS: Record<BadKind, string> = {
  'dotdot-path': 'an entry rootfs/../evil',
  'absolute-path': `an entry with an absolute path (${ABS_ESCAPE_PATH})`,
  'symlink-escape': 'a symlink rootfs/x -> ../../../../etc, then a file rootfs/x/passwd written through it',
  'hardlink-escape': 'a hard link rootfs/h to ../../etc/passwd',
  'no-manifest': 'no manifest',
  'manifest-not-json': 'a manifest that is not JSON',
  'bad-name': 'a manifest whose name is not an AC identifier',
  'relative-exec': 'a manifest with a relative app.exec',
  'wrong-ackind': 'a manifest with acKind PodManifest',
  'wrong-os': 'os label freebsd (not this host)',
  'wrong-arch': 'arch label aarch64 (not this host)',
  'truncated': 'an archive cut in the middle of a file',
  'not-a-tar': 'random bytes',
};

function baseEntries(manifest: Record<string, unknown> | string | null): TarEntry[] {
  const e: TarEntry[] = [];
  if (manifest !== null) e.push({ header: { name: 'manifest' }, body: typeof manifest === 'string' ? manifest : JSON.stringify(manifest) });
  e.push(
    { header: { name: 'rootfs', type: 'directory' } },
    { header: { name: 'rootfs/etc', type: 'directory' } },
    { header: { name: 'rootfs/etc/hostname' }, body: 'bad\n' },
  );
  return e;
}

/** Writes a broken ACI of the given kind into `dir`; returns its path. */
export async function buildBadAci(dir: string, kind: BadKind, name = `example.com/rkt-test/bad-${kind}`): Promise<string> {
  const good = makeManifest({ name, busybox: false });
  let entries: TarEntry[];
  switch (kind) {
    case 'dotdot-path':
      entries = [...baseEntries(good), { header: { name: 'rootfs/../evil' }, body: 'evil\n' }];
      break;
    case 'absolute-path':
      entries = [...baseEntries(good), { header: { name: ABS_ESCAPE_PATH }, body: 'evil\n' }];
      break;
    case 'symlink-escape':
      entries = [
        ...baseEntries(good),
        { header: { name: 'rootfs/x', type: 'symlink', linkname: '../../../../etc', mode: 0o777 } },
        { header: { name: 'rootfs/x/passwd' }, body: 'evil::0:0::/:/bin/sh\n' },
      ];
      break;
    case 'hardlink-escape':
      entries = [...baseEntries(good), { header: { name: 'rootfs/h', type: 'link', linkname: '../../etc/passwd' } }];
      break;
    case 'no-manifest':
      entries = baseEntries(null);
      break;
    case 'manifest-not-json':
      entries = baseEntries('{"acKind": "ImageManifest", this is not json');
      break;
    case 'bad-name':
      entries = baseEntries({ ...good, name: 'Not A Valid/Name!' });
      break;
    case 'relative-exec':
      entries = baseEntries({ ...good, app: { exec: ['bin/sh'], user: '0', group: '0' } });
      break;
    case 'wrong-ackind':
      entries = baseEntries({ ...good, acKind: 'PodManifest' });
      break;
    case 'wrong-os':
      entries = baseEntries(makeManifest({ name, os: 'freebsd', busybox: false }));
      break;
    case 'wrong-arch':
      entries = baseEntries(makeManifest({ name, arch: 'aarch64', busybox: false }));
      break;
    case 'truncated': {
      const big = randomBytes(64 * 1024);
      const buf = await tarBuffer([...baseEntries(good), { header: { name: 'rootfs/big.bin' }, body: big }]);
      // Cut in the middle of big.bin's data: well past its header, well before its end.
      const out = join(dir, `bad-${kind}.aci`);
      writeFileSync(out, buf.subarray(0, buf.length - 1024 - 32 * 1024));
      return out;
    }
    case 'not-a-tar': {
      const out = join(dir, `bad-${kind}.aci`);
      writeFileSync(out, randomBytes(10 * 1024));
      return out;
    }
  }
  const out = join(dir, `bad-${kind}.aci`);
  writeFileSync(out, await tarBuffer(entries));
  return out;
}

/** True when the host tools the fixtures need are present. */
export function fixturesAvailable(): { ok: boolean; missing: string[] } {
  const missing = ['tar', 'gzip', 'bzip2', 'xz'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0);
  if (spawnSync(BUSYBOX, ['true'], { stdio: 'ignore' }).status !== 0) missing.push(BUSYBOX);
  return { ok: missing.length === 0, missing };
}
