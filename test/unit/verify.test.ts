import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as openpgp from 'openpgp';
import { RktError } from '../../src/lib/errors.ts';
import { prefixDir, rootDir, storeTrustedKey, type KeystoreDirs } from '../../src/image/trust/keystore.ts';
import { trustedSigners, verifyDetachedSignature } from '../../src/image/trust/verify.ts';

const HAVE_GPG = spawnSync('gpg', ['--version'], { stdio: 'ignore' }).status === 0;

/** A throwaway GnuPG home, as a user signing images would have. */
class Gpg {
  readonly home: string;
  constructor(base: string) {
    this.home = join(base, 'gnupg');
    mkdirSync(this.home, { mode: 0o700 });
  }
  run(args: string[]): string {
    const r = spawnSync('gpg', ['--homedir', this.home, '--batch', '--no-tty', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`gpg ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }
  /** Generates a key and returns its fingerprint (lowercase). */
  genKey(uid: string, algo = 'ed25519', usage = 'sign'): string {
    this.run(['--quick-gen-key', uid, algo, usage, 'never']);
    const fpr = /^fpr:+([0-9A-F]+):/m.exec(this.run(['--with-colons', '--list-keys', `=${uid}`]))?.[1];
    assert.ok(fpr, 'fingerprint of the generated key');
    return fpr.toLowerCase();
  }
  exportKey(fpr: string): string {
    return this.run(['--armor', '--export', fpr]);
  }
  sign(fpr: string, file: string, extra: string[] = []): string {
    const out = `${file}.${Math.random().toString(36).slice(2)}.sig`;
    this.run(['--local-user', fpr, '--detach-sign', '--output', out, ...extra, file]);
    return out;
  }
  close(): void {
    spawnSync('gpgconf', ['--homedir', this.home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
  }
}

function isRktError(code: string, re?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof RktError, `expected RktError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return true;
  };
}

describe('detached signature verification (keys and signatures made by gpg)', { skip: HAVE_GPG ? false : 'gpg is not installed' }, () => {
  let base: string;
  let gpg: Gpg;
  let alice: string; // ed25519
  let rsa: string; // gpg's default algorithm (rsa3072)
  let aliceKey: string;
  let rsaKey: string;
  let image: string;
  let aliceSigArmored: string;
  let n = 0;
  const dirsFor = (): KeystoreDirs => {
    n += 1;
    return { systemConfig: join(base, `sys${n}`), localConfig: join(base, `local${n}`) };
  };

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'rkt-verify-'));
    gpg = new Gpg(base);
    alice = gpg.genKey('Alice Example <alice@example.com>');
    rsa = gpg.genKey('Rsa Example <rsa@example.com>', 'default', 'default');
    aliceKey = gpg.exportKey(alice);
    rsaKey = gpg.exportKey(rsa);
    image = join(base, 'image.aci');
    writeFileSync(image, Buffer.alloc(3 * 1024 * 1024 + 17, 'rkt'));
    aliceSigArmored = gpg.sign(alice, image, ['--armor']);
  });
  after(() => {
    gpg?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  test('good armored signature by a prefix-trusted key → signer fingerprint and uids', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { prefix: 'example.com/app' }, aliceKey);
    const res = await verifyDetachedSignature({ imageName: 'example.com/app', dataPath: image, signature: readFileSync(aliceSigArmored, 'utf8'), dirs });
    assert.deepEqual(res, { fingerprint: alice, uids: ['Alice Example <alice@example.com>'] });
    // The signature may also come as bytes.
    const again = await verifyDetachedSignature({ imageName: 'example.com/app', dataPath: image, signature: readFileSync(aliceSigArmored), dirs });
    assert.equal(again.fingerprint, alice);
  });

  test('binary signature and an RSA key', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { prefix: 'example.com' }, rsaKey);
    const sig = readFileSync(gpg.sign(rsa, image));
    assert.notEqual(sig[0], 0x2d); // not armored
    const res = await verifyDetachedSignature({ imageName: 'example.com/app', dataPath: image, signature: sig, dirs });
    assert.equal(res.fingerprint, rsa);
  });

  test('signature by a signing subkey → primary key fingerprint', async () => {
    const dirs = dirsFor();
    const carol = gpg.genKey('Carol <carol@example.com>', 'ed25519', 'cert');
    gpg.run(['--quick-add-key', carol, 'ed25519', 'sign', 'never']);
    await storeTrustedKey(dirs, { prefix: 'example.com/app' }, gpg.exportKey(carol));
    const sig = readFileSync(gpg.sign(carol, image, ['--armor']));
    const res = await verifyDetachedSignature({ imageName: 'example.com/app/sub', dataPath: image, signature: sig, dirs });
    assert.equal(res.fingerprint, carol);
  });

  test('tampered data → BAD_SIGNATURE', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { prefix: 'example.com/app' }, aliceKey);
    const tampered = join(base, 'tampered.aci');
    writeFileSync(tampered, readFileSync(image));
    appendFileSync(tampered, 'x');
    await assert.rejects(
      verifyDetachedSignature({ imageName: 'example.com/app', dataPath: tampered, signature: readFileSync(aliceSigArmored), dirs }),
      isRktError('BAD_SIGNATURE', /bad signature for image "example\.com\/app"/),
    );
    const flipped = readFileSync(image);
    flipped[1000] = (flipped[1000] as number) ^ 1;
    writeFileSync(tampered, flipped);
    await assert.rejects(
      verifyDetachedSignature({ imageName: 'example.com/app', dataPath: tampered, signature: readFileSync(aliceSigArmored), dirs }),
      isRktError('BAD_SIGNATURE'),
    );
  });

  test('unreadable signatures → BAD_SIGNATURE', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { root: true }, aliceKey);
    for (const signature of ['not a signature', Buffer.from([0x00, 0x01, 0x02]), aliceKey, '']) {
      await assert.rejects(verifyDetachedSignature({ imageName: 'example.com/app', dataPath: image, signature, dirs }), isRktError('BAD_SIGNATURE'));
    }
  });

  test('key trusted only for another prefix → UNTRUSTED_KEY naming image, key and a trust hint', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { prefix: 'example.com/other' }, aliceKey);
    await storeTrustedKey(dirs, { prefix: 'example.com/app' }, rsaKey);
    const keyId = alice.slice(-16).toUpperCase();
    await assert.rejects(
      verifyDetachedSignature({ imageName: 'example.com/app', dataPath: image, signature: readFileSync(aliceSigArmored), dirs }),
      (err: unknown) => {
        isRktError('UNTRUSTED_KEY', /image "example\.com\/app" is signed by key/)(err);
        const e = err as RktError;
        assert.ok(e.message.includes(keyId), e.message);
        assert.match(e.hint ?? '', /rkt trust --prefix "example\.com\/app"/);
        return true;
      },
    );
    // The early check (before downloading an image) agrees.
    await assert.rejects(trustedSigners({ imageName: 'example.com/app', signature: readFileSync(aliceSigArmored), dirs }), isRktError('UNTRUSTED_KEY'));
    assert.deepEqual(
      (await trustedSigners({ imageName: 'example.com/other', signature: readFileSync(aliceSigArmored), dirs })).map((s) => s.fingerprint),
      [alice],
    );
  });

  test('prefix matching on path components, root.d for everything, masking', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { prefix: 'example.com/foo' }, aliceKey);
    const check = (imageName: string) =>
      verifyDetachedSignature({ imageName, dataPath: image, signature: readFileSync(aliceSigArmored), dirs });
    assert.equal((await check('example.com/foo/bar')).fingerprint, alice);
    await assert.rejects(check('example.com/foobar'), isRktError('UNTRUSTED_KEY'));

    // A system-wide root key trusts every image…
    mkdirSync(rootDir(dirs.systemConfig), { recursive: true });
    writeFileSync(join(rootDir(dirs.systemConfig), alice), aliceKey);
    assert.equal((await check('example.com/foobar')).fingerprint, alice);
    assert.equal((await check('other.org/x')).fingerprint, alice);
    // …until an empty local file masks it.
    mkdirSync(rootDir(dirs.localConfig), { recursive: true });
    writeFileSync(join(rootDir(dirs.localConfig), alice), '');
    await assert.rejects(check('other.org/x'), isRktError('UNTRUSTED_KEY'));
    assert.equal((await check('example.com/foo/bar')).fingerprint, alice);
  });

  test('a misnamed trusted key file is an error', async () => {
    const dirs = dirsFor();
    mkdirSync(prefixDir(dirs.localConfig, 'example.com'), { recursive: true });
    writeFileSync(join(prefixDir(dirs.localConfig, 'example.com'), rsa), aliceKey);
    await assert.rejects(
      verifyDetachedSignature({ imageName: 'example.com/app', dataPath: image, signature: readFileSync(aliceSigArmored), dirs }),
      isRktError('CONFIG', /fingerprint mismatch/),
    );
  });

  test('weak hashes stay refused (SHA-1 data signature)', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { root: true }, rsaKey);
    const sig = readFileSync(gpg.sign(rsa, image, ['--armor', '--digest-algo', 'SHA1']));
    await assert.rejects(
      verifyDetachedSignature({ imageName: 'example.com/app', dataPath: image, signature: sig, dirs }),
      isRktError('BAD_SIGNATURE', /SHA1/),
    );
  });

  test('text-mode signatures (gpg --textmode) verify too', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { root: true }, aliceKey);
    const text = join(base, 'text.txt');
    writeFileSync(text, 'line one\nline two\n');
    const sig = readFileSync(gpg.sign(alice, text, ['--armor', '--textmode']));
    assert.equal((await verifyDetachedSignature({ imageName: 'example.com/app', dataPath: text, signature: sig, dirs })).fingerprint, alice);
  });

  test('missing data file → IO error; empty data signed → ok', async () => {
    const dirs = dirsFor();
    await storeTrustedKey(dirs, { root: true }, aliceKey);
    await assert.rejects(
      verifyDetachedSignature({ imageName: 'example.com/app', dataPath: join(base, 'nope.aci'), signature: readFileSync(aliceSigArmored), dirs }),
      isRktError('IO'),
    );
    const empty = join(base, 'empty');
    writeFileSync(empty, '');
    const sig = readFileSync(gpg.sign(alice, empty));
    assert.equal((await verifyDetachedSignature({ imageName: 'example.com/app', dataPath: empty, signature: sig, dirs })).fingerprint, alice);
  });
});

describe('detached signature verification (openpgp-made key)', () => {
  let base: string;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'rkt-verify-js-'));
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  test('signature by an openpgp.js key verifies; a second signer does not need to be trusted', async () => {
    const [k1, k2] = await Promise.all([
      openpgp.generateKey({ userIDs: [{ name: 'One', email: 'one@example.com' }], format: 'object' }),
      openpgp.generateKey({ userIDs: [{ name: 'Two', email: 'two@example.com' }], format: 'object' }),
    ]);
    const data = join(base, 'data.bin');
    writeFileSync(data, 'some image bytes');
    const signature = await openpgp.sign({
      message: await openpgp.createMessage({ binary: readFileSync(data) }),
      signingKeys: [k2.privateKey, k1.privateKey],
      detached: true,
    });
    const dirs = { systemConfig: join(base, 'sys'), localConfig: join(base, 'local') };
    await storeTrustedKey(dirs, { prefix: 'example.com' }, k1.publicKey.armor());
    const res = await verifyDetachedSignature({ imageName: 'example.com/app', dataPath: data, signature, dirs });
    assert.deepEqual(res, { fingerprint: k1.publicKey.getFingerprint(), uids: ['One <one@example.com>'] });
  });
});
