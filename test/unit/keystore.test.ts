import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as openpgp from 'openpgp';
import { RktError } from '../../src/lib/errors.ts';
import { formatFingerprint } from '../../src/image/trust/fingerprint.ts';
import { keyringFor, prefixDir, rootDir, storeTrustedKey, type KeystoreDirs } from '../../src/image/trust/keystore.ts';

interface TestKey {
  fingerprint: string;
  armored: string;
  binary: Uint8Array;
  privateArmored: string;
}

async function makeKey(name: string): Promise<TestKey> {
  const { publicKey, privateKey } = await openpgp.generateKey({ userIDs: [{ name, email: `${name}@example.com` }], format: 'object' });
  return {
    fingerprint: publicKey.getFingerprint(),
    armored: publicKey.armor(),
    binary: publicKey.write(),
    privateArmored: privateKey.armor(),
  };
}

function tempDirs(): KeystoreDirs & { base: string } {
  const base = mkdtempSync(join(tmpdir(), 'rkt-keystore-'));
  return { base, systemConfig: join(base, 'sys'), localConfig: join(base, 'local') };
}

function put(dir: string, name: string, content: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function fingerprintsFor(dirs: KeystoreDirs, name: string): Promise<string[]> {
  return (await keyringFor(dirs, name)).map((k) => k.fingerprint).sort();
}

function isRktError(code: string, re?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof RktError, `expected RktError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return true;
  };
}

describe('trust store', () => {
  let a: TestKey;
  let b: TestKey;
  const cleanups: string[] = [];
  const fresh = (): KeystoreDirs => {
    const d = tempDirs();
    cleanups.push(d.base);
    return d;
  };

  before(async () => {
    [a, b] = await Promise.all([makeKey('alice'), makeKey('bob')]);
  });
  after(() => {
    for (const d of cleanups) rmSync(d, { recursive: true, force: true });
  });

  test('formats fingerprints as rkt prints them', () => {
    assert.equal(formatFingerprint('8b86de38890ddb7291867b025210bd8888182190'), '8B86 DE38 890D DB72 9186  7B02 5210 BD88 8818 2190');
  });

  test('stores a prefix key in LOCAL prefix.d, 0644, armored, atomically', async () => {
    const dirs = fresh();
    const res = await storeTrustedKey(dirs, { prefix: 'example.com/app' }, a.armored);
    const want = join(dirs.localConfig, 'trustedkeys', 'prefix.d', 'example.com', 'app', a.fingerprint);
    assert.deepEqual(res, { path: want, fingerprint: a.fingerprint });
    assert.match(a.fingerprint, /^[0-9a-f]{40}$/);
    assert.equal(statSync(want).mode & 0o777, 0o644);
    assert.equal(statSync(prefixDir(dirs.localConfig, 'example.com/app')).mode & 0o777, 0o755);
    assert.equal(readFileSync(want, 'utf8'), `${a.armored.trim()}\n`);
    // No temp files left behind.
    assert.deepEqual(readdirSync(prefixDir(dirs.localConfig, 'example.com/app')), [a.fingerprint]);
    // Overwriting the same key is fine.
    await storeTrustedKey(dirs, { prefix: 'example.com/app' }, a.armored);
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/app'), [a.fingerprint]);
  });

  test('stores a root key; binary input is stored armored', async () => {
    const dirs = fresh();
    const res = await storeTrustedKey(dirs, { root: true }, a.binary);
    assert.equal(res.path, join(rootDir(dirs.localConfig), a.fingerprint));
    assert.match(readFileSync(res.path, 'utf8'), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    assert.deepEqual(await fingerprintsFor(dirs, 'anything.example/at/all'), [a.fingerprint]);
  });

  test('refuses bad prefixes, bad scopes, secret keys, several keys, non-keys', async () => {
    const dirs = fresh();
    for (const prefix of ['Example.com', 'https://example.com', 'example.com/', '../etc', 'example.com/*', 'a//b']) {
      await assert.rejects(storeTrustedKey(dirs, { prefix }, a.armored), isRktError('USAGE', /AC identifier/), prefix);
    }
    await assert.rejects(storeTrustedKey(dirs, { prefix: 'example.com', root: true }, a.armored), isRktError('USAGE'));
    await assert.rejects(storeTrustedKey(dirs, {}, a.armored), isRktError('USAGE'));
    await assert.rejects(storeTrustedKey(dirs, { root: true }, a.privateArmored), isRktError('USAGE', /secret key/));
    const both = openpgp.armor(openpgp.enums.armor.publicKey, new Uint8Array([...a.binary, ...b.binary]));
    await assert.rejects(storeTrustedKey(dirs, { root: true }, both), isRktError('USAGE', /2 keys/));
    await assert.rejects(storeTrustedKey(dirs, { root: true }, 'hello, world\n'), isRktError('USAGE', /not an OpenPGP public key/));
    await assert.rejects(storeTrustedKey(dirs, { root: true }, Buffer.from('\x00\x01garbage')), isRktError('USAGE'));
    assert.throws(() => readdirSync(join(dirs.localConfig, 'trustedkeys')), /ENOENT/);
  });

  test('keyring: prefixes match whole path components', async () => {
    const dirs = fresh();
    put(prefixDir(dirs.localConfig, 'example.com/foo'), a.fingerprint, a.armored);
    put(prefixDir(dirs.systemConfig, 'example.com'), b.fingerprint, b.armored);
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/foo'), [a.fingerprint, b.fingerprint].sort());
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/foo/bar'), [a.fingerprint, b.fingerprint].sort());
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/foobar'), [b.fingerprint]);
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com'), [b.fingerprint]);
    assert.deepEqual(await fingerprintsFor(dirs, 'example.org/foo'), []);
    assert.deepEqual(await fingerprintsFor(dirs, 'example.co'), []);
  });

  test('keyring: root.d keys (system and local) trust every image', async () => {
    const dirs = fresh();
    put(rootDir(dirs.systemConfig), a.fingerprint, a.armored);
    put(rootDir(dirs.localConfig), b.fingerprint, b.armored);
    assert.deepEqual(await fingerprintsFor(dirs, 'x'), [a.fingerprint, b.fingerprint].sort());
    assert.deepEqual(await fingerprintsFor(dirs, 'coreos.com/etcd'), [a.fingerprint, b.fingerprint].sort());
  });

  test('keyring: the same key in SYS and LOCAL is listed once, from LOCAL', async () => {
    const dirs = fresh();
    put(rootDir(dirs.systemConfig), a.fingerprint, a.armored);
    const local = put(prefixDir(dirs.localConfig, 'example.com'), a.fingerprint, a.armored);
    const ring = await keyringFor(dirs, 'example.com/app');
    assert.equal(ring.length, 1);
    assert.equal(ring[0]?.path, local);
    assert.equal(ring[0]?.key.getFingerprint(), a.fingerprint);
  });

  test('keyring: an empty LOCAL file masks the SYS key', async () => {
    const dirs = fresh();
    put(rootDir(dirs.systemConfig), a.fingerprint, a.armored);
    put(rootDir(dirs.systemConfig), b.fingerprint, b.armored);
    put(rootDir(dirs.localConfig), a.fingerprint, '');
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/app'), [b.fingerprint]);

    put(prefixDir(dirs.systemConfig, 'example.com'), a.fingerprint, a.armored);
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/app'), [a.fingerprint, b.fingerprint].sort());
    put(prefixDir(dirs.localConfig, 'example.com'), a.fingerprint, '');
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/app'), [b.fingerprint]);
    // A mask file named like no known key changes nothing.
    put(rootDir(dirs.localConfig), '0'.repeat(40), '');
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com/app'), [b.fingerprint]);
  });

  test('keyring: a file not named after its key fingerprint is an error', async () => {
    const dirs = fresh();
    put(prefixDir(dirs.localConfig, 'example.com'), b.fingerprint, a.armored);
    await assert.rejects(keyringFor(dirs, 'example.com/app'), isRktError('CONFIG', new RegExp(`fingerprint mismatch.*${a.fingerprint}`)));
    // Not on the image's path: not read.
    assert.deepEqual(await fingerprintsFor(dirs, 'example.org/app'), []);
  });

  test('keyring: a non-key file on the path is an error; dot files and subdirectories are ignored', async () => {
    const dirs = fresh();
    put(rootDir(dirs.localConfig), a.fingerprint, a.armored);
    put(rootDir(dirs.localConfig), `.${b.fingerprint}.tmp-1-abcd`, 'partial');
    mkdirSync(join(rootDir(dirs.localConfig), 'subdir'));
    assert.deepEqual(await fingerprintsFor(dirs, 'example.com'), [a.fingerprint]);
    put(rootDir(dirs.localConfig), b.fingerprint, 'not a key');
    await assert.rejects(keyringFor(dirs, 'example.com'), isRktError('CONFIG', /not an OpenPGP public key/));
  });

  test('keyring: rejects names that are not AC identifiers', async () => {
    const dirs = fresh();
    await assert.rejects(keyringFor(dirs, 'Example.com/App'), isRktError('USAGE'));
    await assert.rejects(keyringFor(dirs, '../x'), isRktError('USAGE'));
  });
});
