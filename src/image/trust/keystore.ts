// rkt's trust store (pkg/keystore/keystore.go):
//
//   {SYS,LOCAL}/trustedkeys/root.d/<fingerprint>                  trusted for every image
//   {SYS,LOCAL}/trustedkeys/prefix.d/<AC identifier>/<fingerprint> trusted for images below the prefix
//
// <fingerprint> is the lowercase hex fingerprint of the file's (first) primary
// key; a file named otherwise is an error. A zero-length file removes the
// same-fingerprint key gathered so far, so an empty LOCAL file masks a key
// shipped in SYS. Files are read in rkt's order: SYS root.d, LOCAL root.d,
// SYS prefix.d (a, a/b, a/b/c), LOCAL prefix.d (a, a/b, a/b/c).
//
// Differences from rkt, on purpose:
// - prefixes match on whole path components: a key for `example.com/foo`
//   trusts `example.com/foo/bar` but not `example.com/foobar` (rkt compared
//   directory paths as strings and trusted both);
// - dot files are skipped (our temp files while writing are dot files).
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { PublicKey } from 'openpgp';
import { RktError, errMessage, isErrno } from '../../lib/errors.ts';
import { keyInfo, readPublicKeys } from './fingerprint.ts';

export interface KeystoreDirs {
  systemConfig: string;
  localConfig: string;
}

export interface TrustedKey {
  /** Lowercase hex fingerprint of the primary key (the file name). */
  fingerprint: string;
  /** The file's content as stored. */
  armored: string;
  /** The file it was read from. */
  path: string;
  /** The parsed key. */
  key: PublicKey;
}

/** appc's ACIdentifier (schema/types/acidentifier.go). */
const AC_IDENTIFIER = /^[a-z0-9]+([-._~/][a-z0-9]+)*$/;

export function isACIdentifier(s: string): boolean {
  return AC_IDENTIFIER.test(s);
}

export function rootDir(configDir: string): string {
  return join(configDir, 'trustedkeys', 'root.d');
}

export function prefixDir(configDir: string, prefix?: string): string {
  const base = join(configDir, 'trustedkeys', 'prefix.d');
  return prefix === undefined ? base : join(base, ...prefix.split('/'));
}

function checkIdentifier(kind: string, name: string): void {
  if (!isACIdentifier(name)) {
    throw new RktError(
      'USAGE',
      `invalid ${kind} "${name}": must be an AC identifier (lowercase letters, digits and "-._~/" separators, e.g. "example.com/app")`,
    );
  }
}

/** The directories whose keys apply to `imageName`, in the order they are read. */
export function keyringDirs(dirs: KeystoreDirs, imageName: string): string[] {
  checkIdentifier('image name', imageName);
  const parts = imageName.split('/');
  const levels = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  return [
    rootDir(dirs.systemConfig),
    rootDir(dirs.localConfig),
    ...levels.map((l) => prefixDir(dirs.systemConfig, l)),
    ...levels.map((l) => prefixDir(dirs.localConfig, l)),
  ];
}

async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    // A missing level, or a file where a directory would be, holds no keys.
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw new RktError('IO', `cannot read trust store directory "${dir}": ${errMessage(err)}`, { cause: err });
  }
}

/** Reads one trust store file; undefined for a mask (empty file) marker. */
export async function readTrustedKeyFile(path: string, name: string): Promise<TrustedKey | 'mask' | undefined> {
  let data: Buffer;
  try {
    const st = await stat(path);
    if (!st.isFile()) return undefined;
    if (st.size === 0) return 'mask';
    data = await readFile(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined; // dangling symlink or removed meanwhile
    throw new RktError('IO', `cannot read trusted key "${path}": ${errMessage(err)}`, { cause: err });
  }
  if (data.length === 0) return 'mask';
  const keys = await readPublicKeys(data, { code: 'CONFIG', what: `trusted key file "${path}"` });
  const key = keys[0] as PublicKey;
  const fingerprint = keyInfo(key).fingerprint;
  if (fingerprint !== name) {
    throw new RktError('CONFIG', `fingerprint mismatch: trusted key file "${path}" holds the key ${fingerprint}`, {
      hint: `a trusted key file must be named after its key's fingerprint; rename it to ${fingerprint} or remove it`,
    });
  }
  return { fingerprint, armored: data.toString('utf8'), path, key };
}

/**
 * The keys trusted for `imageName` (an AC identifier such as `example.com/app`):
 * root.d keys plus the prefix.d keys of every path prefix of the name.
 */
export async function keyringFor(dirs: KeystoreDirs, imageName: string): Promise<TrustedKey[]> {
  const trusted = new Map<string, TrustedKey>();
  for (const dir of keyringDirs(dirs, imageName)) {
    for (const name of await listFiles(dir)) {
      const entry = await readTrustedKeyFile(join(dir, name), name);
      if (entry === 'mask') trusted.delete(name);
      else if (entry !== undefined) {
        trusted.delete(entry.fingerprint); // later layers win, in their order
        trusted.set(entry.fingerprint, entry);
      }
    }
  }
  return [...trusted.values()];
}

/**
 * Stores one public key (armored or binary) in LOCAL, for a prefix or for
 * all images (`root`). The file is written atomically, mode 0644, ASCII-armored.
 */
export async function storeTrustedKey(
  dirs: KeystoreDirs,
  where: { prefix?: string; root?: boolean },
  armored: string | Uint8Array,
): Promise<{ path: string; fingerprint: string }> {
  const hasPrefix = where.prefix !== undefined && where.prefix !== '';
  if (hasPrefix === Boolean(where.root)) {
    throw new RktError('USAGE', 'a trusted key is stored either for a prefix or as a root key');
  }
  if (hasPrefix) checkIdentifier('prefix', where.prefix as string);
  const keys = await readPublicKeys(armored, { code: 'USAGE', what: 'the key to trust' });
  if (keys.length !== 1) {
    throw new RktError('USAGE', `the key to trust holds ${keys.length} keys; store them one at a time`);
  }
  const key = keys[0] as PublicKey;
  const { fingerprint } = keyInfo(key);
  // Keep the user's armored text as given; binary input is armored here.
  let text = typeof armored === 'string' ? armored : Buffer.from(armored).toString('utf8');
  if (!text.trimStart().startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----')) text = key.armor();
  text = `${text.trim()}\n`;

  const dir = hasPrefix ? prefixDir(dirs.localConfig, where.prefix) : rootDir(dirs.localConfig);
  const path = join(dir, fingerprint);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    await writeAtomic(path, text);
  } catch (err) {
    throw new RktError('IO', `cannot store trusted key at "${path}": ${errMessage(err)}`, { cause: err });
  }
  return { path, fingerprint };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const slash = path.lastIndexOf('/');
  const tmp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    try {
      await fh.writeFile(text);
      await fh.chmod(0o644);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
