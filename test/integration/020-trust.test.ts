// `rkt trust` end to end: the real bin/rkt, keys made by gpg.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertOk, assertRktError, describeRun, filesUnder, makeEnv, rkt, RKT_FAILURE, type RktEnv } from '../helpers/rkt.ts';

const HAVE_GPG = spawnSync('gpg', ['--version'], { stdio: 'ignore' }).status === 0;
const HAVE_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

/** Serves `files` (URL path → content) on 127.0.0.1; returns the base URL. */
async function serve(files: Record<string, string>, tls?: { key: string; cert: string }): Promise<{ url: string; server: Server }> {
  const handler: RequestListener = (req, res) => {
    const body = files[req.url ?? ''];
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/pgp-keys' });
    res.end(body ?? 'not found');
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, server };
}

function gpg(home: string, args: string[]): string {
  const r = spawnSync('gpg', ['--homedir', home, '--batch', '--no-tty', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`gpg ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Generates a key in `home`; returns its lowercase fingerprint and exports it armored to `out`. */
function makeKey(home: string, uid: string, out: string): string {
  gpg(home, ['--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
  const fpr = /^fpr:+([0-9A-F]+):/m.exec(gpg(home, ['--with-colons', '--list-keys', `=${uid}`]))?.[1];
  assert.ok(fpr);
  writeFileSync(out, gpg(home, ['--armor', '--export', fpr]));
  return fpr.toLowerCase();
}

function spaced(fpr: string): string {
  const g = fpr.toUpperCase().match(/.{4}/g) ?? [];
  return `${g.slice(0, 5).join(' ')}  ${g.slice(5).join(' ')}`;
}

describe('rkt trust', { skip: HAVE_GPG ? false : 'gpg is not installed' }, () => {
  // Keys are made once; every test gets its own rkt dirs.
  let keys: RktEnv;
  let home: string;
  let keyFile: string;
  let fpr: string;
  let key2File: string;
  let fpr2: string;
  const envs: RktEnv[] = [];
  const fresh = (): RktEnv => {
    const e = makeEnv('rkt-trust-');
    envs.push(e);
    return e;
  };
  const trust = (env: RktEnv, args: string[], input = '') =>
    rkt(null, [`--local-config=${env.localConfig}`, `--system-config=${env.systemConfig}`, 'trust', ...args], { input, cwd: env.work });

  before(() => {
    keys = makeEnv('rkt-trust-keys-');
    home = join(keys.work, 'gnupg');
    mkdirSync(home, { mode: 0o700 });
    keyFile = join(keys.work, 'alice.asc');
    key2File = join(keys.work, 'bob.asc');
    fpr = makeKey(home, 'Alice Example <alice@example.com>', keyFile);
    fpr2 = makeKey(home, 'Bob Example <bob@example.com>', key2File);
  });
  after(() => {
    spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    keys?.cleanup();
    for (const e of envs) e.cleanup();
  });

  test('--prefix with --skip-fingerprint-review stores the key under prefix.d', async () => {
    const env = fresh();
    const r = assertOk(await trust(env, ['--prefix=example.com/app', '--skip-fingerprint-review', keyFile]));
    const want = join(env.localConfig, 'trustedkeys', 'prefix.d', 'example.com', 'app', fpr);
    assert.equal(r.stdout, `Added key for prefix "example.com/app" at "${want}"\n`, describeRun(r));
    assert.match(r.stderr, /^Prefix: "example\.com\/app"$/m);
    assert.ok(r.stderr.includes(`Key: "${keyFile}"`), describeRun(r));
    assert.ok(r.stderr.includes(`GPG key fingerprint is: ${spaced(fpr)}`), describeRun(r));
    assert.match(r.stderr, /^\tAlice Example <alice@example\.com>$/m);
    assert.doesNotMatch(r.stderr, /Are you sure/);
    assert.equal(statSync(want).mode & 0o777, 0o644);
    assert.match(readFileSync(want, 'utf8'), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    assert.deepEqual(filesUnder(env.localConfig), [`trustedkeys/prefix.d/example.com/app/${fpr}`]);
    assert.deepEqual(filesUnder(env.systemConfig), []);
  });

  test('interactive review: "no" refuses and writes nothing', async () => {
    const env = fresh();
    const r = await trust(env, ['--prefix=example.com/app', keyFile], 'no\n');
    assert.equal(r.code, RKT_FAILURE, describeRun(r));
    assert.match(r.stderr, /Are you sure you want to trust this key \(yes\/no\)\?/);
    assert.match(r.stderr, /^rkt: not trusting ".*alice\.asc": the key was not accepted$/m);
    assert.equal(r.stdout, '');
    assert.deepEqual(filesUnder(env.localConfig), []);
  });

  test('interactive review: "yes" trusts; no answer (EOF) refuses', async () => {
    const env = fresh();
    const r = assertOk(await trust(env, ['--prefix=example.com/app', keyFile], 'yes\n'));
    assert.match(r.stderr, /Are you sure you want to trust this key/);
    assert.match(r.stdout, /^Added key for prefix "example\.com\/app" at /);
    const eof = await trust(env, ['--prefix=example.com/other', keyFile], '');
    assert.equal(eof.code, RKT_FAILURE, describeRun(eof));
    assert.match(eof.stderr, /^rkt: not trusting .*no answer on stdin$/m);
    assert.deepEqual(filesUnder(env.localConfig), [`trustedkeys/prefix.d/example.com/app/${fpr}`]);
  });

  test('several keys, one answer each; a relative path', async () => {
    const env = fresh();
    writeFileSync(join(env.work, 'bob.asc'), readFileSync(key2File));
    const r = assertOk(await trust(env, ['--prefix=example.com', keyFile, 'bob.asc'], 'y\nyes\n'));
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('Added key')).length, 2, describeRun(r));
    assert.deepEqual(filesUnder(env.localConfig), [`trustedkeys/prefix.d/example.com/${fpr}`, `trustedkeys/prefix.d/example.com/${fpr2}`].sort());
  });

  test('--root stores under root.d', async () => {
    const env = fresh();
    const r = assertOk(await trust(env, ['--root', '--skip-fingerprint-review', keyFile]));
    const want = join(env.localConfig, 'trustedkeys', 'root.d', fpr);
    assert.equal(r.stdout, `Added root key at "${want}"\n`);
    assert.deepEqual(filesUnder(env.localConfig), [`trustedkeys/root.d/${fpr}`]);
  });

  test('bad input: missing file, not a key, flag misuse', async () => {
    const env = fresh();
    const notKey = join(env.work, 'not-a-key.txt');
    writeFileSync(notKey, 'hello\n');
    const cases: Array<[string[], RegExp]> = [
      [['--prefix=example.com/app', '--skip-fingerprint-review', join(env.work, 'missing.asc')], /cannot read the key .*missing\.asc.*: no such file/],
      [['--prefix=example.com/app', '--skip-fingerprint-review', notKey], /not-a-key\.txt" is not an OpenPGP public key/],
      [['--prefix=example.com/app', '--root', keyFile], /--root and --prefix usage mutually exclusive/],
      [['--root'], /--root needs at least one PUBKEY/],
      [[keyFile], /implicit unbounded trust/],
      [[], /--prefix/],
      [['--prefix=https://example.com/app', keyFile], /must not contain a URL scheme, omit https:\/\//],
      [['--prefix=Example.com', keyFile], /invalid --prefix "Example\.com"/],
      [['--prefix=example.com/app', 'http://example.com/key.asc'], /plain http/],
      [['--prefix=example.com/app', 'ftp://example.com/key.asc'], /unsupported key location/],
    ];
    for (const [args, re] of cases) {
      const r = await trust(env, args);
      assertRktError(r, re);
      assert.equal(r.stdout, '', describeRun(r));
    }
    assert.deepEqual(filesUnder(env.localConfig), []);
  });

  test('file:// URLs are read like paths', async () => {
    const env = fresh();
    assertOk(await trust(env, ['--prefix=example.com/app', '--skip-fingerprint-review', `file://${keyFile}`]));
    assert.deepEqual(filesUnder(env.localConfig), [`trustedkeys/prefix.d/example.com/app/${fpr}`]);
  });

  test('http:// keys need --insecure-allow-http; fetch errors are reported', async () => {
    const env = fresh();
    const { url, server } = await serve({ '/alice.asc': readFileSync(keyFile, 'utf8') });
    try {
      assertRktError(await trust(env, ['--prefix=example.com/app', '--skip-fingerprint-review', `${url}/alice.asc`]), /plain http/);
      const r = assertOk(await trust(env, ['--prefix=example.com/app', '--insecure-allow-http', `${url}/alice.asc`], 'yes\n'));
      assert.ok(r.stderr.includes(`Key: "${url}/alice.asc"`), describeRun(r));
      assert.match(r.stderr, /Are you sure/);
      assertRktError(await trust(env, ['--prefix=example.com/app', '--insecure-allow-http', '--skip-fingerprint-review', `${url}/missing.asc`]), /404/);
    } finally {
      server.close();
    }
    assert.deepEqual(filesUnder(env.localConfig), [`trustedkeys/prefix.d/example.com/app/${fpr}`]);
  });

  test('--trust-keys-from-https skips the review for https keys', { skip: HAVE_OPENSSL ? false : 'openssl is not installed' }, async () => {
    const env = fresh();
    const key = join(env.work, 'tls.key');
    const cert = join(env.work, 'tls.crt');
    const o = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(o.status, 0, o.stderr);
    const { url, server } = await serve({ '/alice.asc': readFileSync(keyFile, 'utf8') }, { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') });
    const run = (globals: string[]) =>
      rkt(null, [`--local-config=${env.localConfig}`, `--system-config=${env.systemConfig}`, '--insecure-options=tls', ...globals, 'trust', '--prefix=example.com/app', `${url}/alice.asc`], { cwd: env.work });
    try {
      const asked = await run([]);
      assert.equal(asked.code, RKT_FAILURE, describeRun(asked));
      assert.match(asked.stderr, /Are you sure/);
      const r = assertOk(await run(['--trust-keys-from-https']));
      assert.doesNotMatch(r.stderr, /Are you sure/);
      assert.match(r.stderr, /without fingerprint review/);
      assert.match(r.stdout, /^Added key for prefix "example\.com\/app" at /);
    } finally {
      server.close();
    }
    assert.deepEqual(filesUnder(env.localConfig).filter((f) => f.startsWith('trustedkeys/')), [`trustedkeys/prefix.d/example.com/app/${fpr}`]);
  });
});
