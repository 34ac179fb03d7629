// The image workflow end to end, as a user types it: build a busybox ACI,
// sign it with a throwaway key, trust, fetch (file, https, discovery),
// list, cat-manifest, export, extract, render, verify, rm, gc; and every
// kind of bad input, which must fail with one error line and leave nothing
// in the store. Each test has its own --dir and config dirs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import {
  ABS_ESCAPE_PATH,
  BAD_DESCRIPTIONS,
  BAD_KINDS,
  buildAci,
  buildBadAci,
  compressAci,
  fixturesAvailable,
  sha512File,
  type Aci,
} from '../helpers/aci.ts';
import { makeKey, type TestKey } from '../helpers/gpg.ts';
import { canListen443, makeCerts, startServer, type Certs, type TestServer } from '../helpers/https.ts';
import { assertNoLeaks, snapshot, track, type Snapshot } from '../helpers/leaks.ts';
import { assertOk, assertRktError, entriesIn, filesUnder, makeEnv, rkt, type RktEnv, type RunOptions, type RunResult } from '../helpers/rkt.ts';

const isRoot = process.getuid?.() === 0;
const tools = fixturesAvailable();
const skipAll = !isRoot ? 'integration tests run as root (they extract images with owners)' : !tools.ok ? `missing host tools: ${tools.missing.join(', ')}` : false;
const port443 = skipAll ? { ok: false, reason: 'skipped' } : await canListen443();

const SHORT_ID = /^sha512-[0-9a-f]{32}$/;
const FULL_ID = /^sha512-[0-9a-f]{64}$/;

// Shared, read-only fixtures (built once); each test gets its own rkt dirs.
let fx: string;
let leakBase: Snapshot;
let key: TestKey; // trusted by the tests
let otherKey: TestKey; // never trusted
let busybox: Aci; // example.com/rkt-test/busybox:1.0.0, signed by `key`
let certs: Certs;
let server: TestServer; // HTTPS on a free port

function newEnv(t: TestContext): RktEnv {
  const env = makeEnv();
  t.after(() => env.cleanup());
  return env;
}

async function trust(env: RktEnv, k: TestKey, prefix: string | null, opts: RunOptions = {}): Promise<RunResult> {
  const args = ['trust', ...(prefix === null ? ['--root'] : [`--prefix=${prefix}`]), '--skip-fingerprint-review', k.publicKeyPath];
  return assertOk(await rkt(env, args, opts), 'rkt trust');
}

async function fetchOk(env: RktEnv, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = assertOk(await rkt(env, ['fetch', ...args], opts), 'rkt fetch');
  const id = r.stdout.trim();
  assert.match(id, args.includes('--full') ? FULL_ID : SHORT_ID, `rkt fetch must print only the image ID on stdout, got ${JSON.stringify(r.stdout)}`);
  return id;
}

async function listRows(env: RktEnv, extra: string[] = []): Promise<string[][]> {
  const r = assertOk(await rkt(env, ['image', 'list', '--no-legend', ...extra]), 'rkt image list');
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s{2,}|\t+/));
}

async function listJson(env: RktEnv): Promise<{ id: string; name: string; size: number; import_time: number; last_used_time: number }[]> {
  const r = assertOk(await rkt(env, ['image', 'list', '--format=json']), 'rkt image list --format=json');
  const v: unknown = JSON.parse(r.stdout);
  assert.ok(Array.isArray(v), 'image list --format=json prints a JSON array');
  return v as never;
}

/** The store holds nothing: no index row, no temp/blob/tree file. */
async function assertStoreEmpty(env: RktEnv, what: string): Promise<void> {
  const rows = await listRows(env);
  assert.deepEqual(rows, [], `${what}: image list shows no image`);
  const cas = join(env.dir, 'cas');
  assert.deepEqual(entriesIn(join(cas, 'tmp')), [], `${what}: nothing left in cas/tmp`);
  assert.deepEqual(filesUnder(join(cas, 'blob')), [], `${what}: no blob files`);
  assert.deepEqual(entriesIn(join(cas, 'tree')), [], `${what}: no tree store`);
  assert.deepEqual(filesUnder(join(env.dir, 'tmp')), [], `${what}: nothing left in the data dir's tmp`);
}

/** Files under the data dir that are neither locks nor the index. */
function storeFiles(env: RktEnv): Set<string> {
  return new Set(filesUnder(env.dir).filter((f) => !/(^|\/)(locks?|imagelocks|treestorelocks)(\/|$)|\.lck$|\.lock$/.test(f)));
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

before(async () => {
  if (skipAll) return;
  leakBase = snapshot();
  fx = mkdtempSync(join(tmpdir(), 'rkt-test-fx-'));
  track(fx);
  key = makeKey({ dir: fx });
  otherKey = makeKey({ uid: 'rkt untrusted <untrusted@example.com>', dir: fx });
  busybox = await buildAci(fx);
  key.sign(busybox.path);
  certs = makeCerts();
  server = await startServer({ certs });
});

after(async () => {
  if (skipAll) return;
  await server?.close();
  certs?.cleanup();
  key?.cleanup();
  otherKey?.cleanup();
  if (fx) rmSync(fx, { recursive: true, force: true });
  if (existsSync(ABS_ESCAPE_PATH)) rmSync(join(ABS_ESCAPE_PATH, '..'), { recursive: true, force: true });
  await assertNoLeaks(leakBase);
});

describe('trust and fetch from a file', { skip: skipAll }, () => {
  test('trust --prefix writes the key into the local trust store', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    const dir = join(env.localConfig, 'trustedkeys', 'prefix.d', busybox.name);
    assert.ok(existsSync(join(dir, key.fingerprint)), `expected ${join('trustedkeys/prefix.d', busybox.name, key.fingerprint)} in --local-config; found ${filesUnder(join(env.localConfig, 'trustedkeys')).join(', ') || 'nothing'}`);
  });

  test('fetch of a signed ACI prints its ID (short, and 64 hex with --full)', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    const id = await fetchOk(env, [busybox.path]);
    assert.equal(id, busybox.shortId, 'ID = sha512 of the uncompressed tar, 32 hex');
    const full = await fetchOk(env, ['--full', busybox.path]);
    assert.equal(full, busybox.id);
    assert.equal((await listRows(env)).length, 1, 'fetching the same image twice stores it once');
  });

  test('fetch by file:// URL and with --signature', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    assert.equal(await fetchOk(env, [`file://${busybox.path}`]), busybox.shortId);
    const elsewhere = join(env.work, 'copy.aci');
    copyFileSync(busybox.path, elsewhere);
    const sig = join(env.work, 'detached.sig');
    copyFileSync(`${busybox.path}.asc`, sig);
    const env2 = newEnv(t);
    await trust(env2, key, busybox.name);
    assert.equal(await fetchOk(env2, [elsewhere, `--signature=${sig}`]), busybox.shortId);
  });

  test('a key trusted with --root verifies any image', async (t) => {
    const env = newEnv(t);
    await trust(env, key, null);
    assert.ok(existsSync(join(env.localConfig, 'trustedkeys', 'root.d', key.fingerprint)), 'key stored under trustedkeys/root.d/<fingerprint>');
    assert.equal(await fetchOk(env, [busybox.path]), busybox.shortId);
  });

  test('a system key is used, and an empty local file masks it', async (t) => {
    const env = newEnv(t);
    const sysDir = join(env.systemConfig, 'trustedkeys', 'prefix.d', busybox.name);
    mkdirSync(sysDir, { recursive: true });
    writeFileSync(join(sysDir, key.fingerprint), key.publicKey);
    assert.equal(await fetchOk(env, [busybox.path]), busybox.shortId);

    const env2 = newEnv(t);
    const sysDir2 = join(env2.systemConfig, 'trustedkeys', 'prefix.d', busybox.name);
    const localDir2 = join(env2.localConfig, 'trustedkeys', 'prefix.d', busybox.name);
    mkdirSync(sysDir2, { recursive: true });
    mkdirSync(localDir2, { recursive: true });
    writeFileSync(join(sysDir2, key.fingerprint), key.publicKey);
    writeFileSync(join(localDir2, key.fingerprint), '');
    assertRktError(await rkt(env2, ['fetch', busybox.path]));
    await assertStoreEmpty(env2, 'masked key');
  });

  test('an unsigned image is refused unless --insecure-options=image', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    const unsigned = join(env.work, 'unsigned.aci');
    copyFileSync(busybox.path, unsigned);
    assertRktError(await rkt(env, ['fetch', unsigned]));
    await assertStoreEmpty(env, 'unsigned image');
    assert.equal(await fetchOk(env, ['--insecure-options=image', unsigned]), busybox.shortId);
  });

  test('a signature by an untrusted key is refused', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    const img = join(env.work, 'other-signed.aci');
    copyFileSync(busybox.path, img);
    otherKey.sign(img);
    assertRktError(await rkt(env, ['fetch', img]));
    await assertStoreEmpty(env, 'untrusted key');
  });

  test('no trusted key at all: refused', async (t) => {
    const env = newEnv(t);
    assertRktError(await rkt(env, ['fetch', busybox.path]));
    await assertStoreEmpty(env, 'no trusted key');
  });

  test('a key trusted for another prefix does not count', async (t) => {
    const env = newEnv(t);
    await trust(env, key, 'example.org/someone-else');
    assertRktError(await rkt(env, ['fetch', busybox.path]));
    await assertStoreEmpty(env, 'other prefix');
  });

  test('a bad signature (signature of another file) is refused', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    const img = join(env.work, 'badsig.aci');
    copyFileSync(busybox.path, img);
    const decoy = join(env.work, 'decoy');
    writeFileSync(decoy, 'not the image\n');
    key.sign(decoy, `${img}.asc`);
    assertRktError(await rkt(env, ['fetch', img]));
    await assertStoreEmpty(env, 'bad signature');
  });

  test('gzip, bzip2 and xz ACIs give the same ID as the uncompressed one', async (t) => {
    for (const kind of ['gzip', 'bzip2', 'xz'] as const) {
      const env = newEnv(t);
      await trust(env, key, busybox.name);
      const c = compressAci(busybox, kind, join(env.work, `busybox.aci.${kind}`));
      key.sign(c.path);
      assert.equal(await fetchOk(env, [c.path]), busybox.shortId, `${kind}: same ID`);
      const out = join(env.work, 'exported.aci');
      assertOk(await rkt(env, ['image', 'export', busybox.shortId, out]));
      assert.equal((await sha512File(out)).slice(0, 64), busybox.sha512.slice(0, 64), `${kind}: export gives back the uncompressed tar`);
    }
  });

  test('errors: a missing file, an unknown image', async (t) => {
    const env = newEnv(t);
    assertRktError(await rkt(env, ['fetch', '--insecure-options=image', join(env.work, 'no-such.aci')]));
    assertRktError(await rkt(env, ['image', 'cat-manifest', 'sha512-00000000000000000000']));
    assertRktError(await rkt(env, ['image', 'rm', 'example.com/no/such/image']), { multi: true });
    await assertStoreEmpty(env, 'errors');
  });
});

describe('image commands', { skip: skipAll }, () => {
  async function withBusybox(t: TestContext): Promise<RktEnv> {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    await fetchOk(env, [busybox.path]);
    return env;
  }

  test('image list: columns, --no-legend, --full, --fields, --format=json', async (t) => {
    const env = await withBusybox(t);
    const plain = assertOk(await rkt(env, ['image', 'list']));
    const lines = plain.stdout.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 2, `header + one row:\n${plain.stdout}`);
    assert.match(lines[0] ?? '', /^ID\s+NAME\s+SIZE\s+IMPORT TIME\s+LAST USED\s*$/);
    const row = lines[1] ?? '';
    assert.ok(row.startsWith(`${busybox.listId} `) || row.startsWith(`${busybox.listId}\t`), `row starts with sha512-+12 hex: ${row}`);
    assert.ok(row.includes(`${busybox.name}:${busybox.version}`), `row names the image as name:version: ${row}`);
    assert.match(row, /\d+(\.\d+)?\s?[KMG]i?B/, 'humanized size');

    const noLegend = await listRows(env);
    assert.equal(noLegend.length, 1);
    assert.equal(noLegend[0]?.[0], busybox.listId);

    const full = await listRows(env, ['--full']);
    assert.equal(full[0]?.[0], busybox.id, '--full shows the whole ID');
    assert.ok(full[0]?.some((c) => /^\d+$/.test(c) && Number(c) >= busybox.size), `--full shows the size in bytes (>= ACI size): ${full[0]?.join(' | ')}`);

    const fields = assertOk(await rkt(env, ['image', 'list', '--fields=name,size']));
    assert.match(fields.stdout.split('\n')[0] ?? '', /^NAME\s+SIZE\s*$/);

    const json = await listJson(env);
    assert.equal(json.length, 1);
    const e = json[0]!;
    assert.equal(e.id, busybox.id, 'JSON ID untruncated');
    assert.ok(e.name.startsWith(busybox.name), `JSON name: ${e.name}`);
    assert.equal(typeof e.size, 'number');
    assert.ok(e.size >= busybox.size);
    assert.equal(typeof e.import_time, 'number');
    assert.equal(typeof e.last_used_time, 'number');
    const pretty = assertOk(await rkt(env, ['image', 'list', '--format=json-pretty']));
    assert.deepEqual(JSON.parse(pretty.stdout), json);
    assert.ok(pretty.stdout.trim().split('\n').length > 3, 'json-pretty is indented over several lines');
  });

  test('image cat-manifest by name and by ID prefix', async (t) => {
    const env = await withBusybox(t);
    for (const ref of [busybox.name, `${busybox.name}:${busybox.version}`, busybox.listId, busybox.shortId]) {
      const r = assertOk(await rkt(env, ['image', 'cat-manifest', ref]), ref);
      const m = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(m.acKind, 'ImageManifest');
      assert.equal(m.name, busybox.name);
      assert.deepEqual(m.labels, busybox.manifest.labels);
      assert.deepEqual((m.app as { exec: string[] }).exec, ['/bin/sh']);
    }
    const compact = assertOk(await rkt(env, ['image', 'cat-manifest', '--pretty-print=false', busybox.name]));
    assert.equal(compact.stdout.trim().split('\n').length, 1, '--pretty-print=false prints one line');
  });

  test('image export writes the same tar (its sha512 is the ID)', async (t) => {
    const env = await withBusybox(t);
    const out = join(env.work, 'out.aci');
    assertOk(await rkt(env, ['image', 'export', busybox.shortId, out]));
    assert.equal(`sha512-${(await sha512File(out)).slice(0, 64)}`, busybox.id);
    assertRktError(await rkt(env, ['image', 'export', busybox.shortId, out]), /exist/i);
    assertOk(await rkt(env, ['image', 'export', '--overwrite', busybox.name, out]));
    assert.equal(`sha512-${(await sha512File(out)).slice(0, 64)}`, busybox.id);
  });

  for (const cmd of ['extract', 'render'] as const) {
    test(`image ${cmd}: full, --rootfs-only, --overwrite`, async (t) => {
      const env = await withBusybox(t);
      const d = join(env.work, cmd);
      assertOk(await rkt(env, ['image', cmd, busybox.shortId, d]));
      assert.ok(existsSync(join(d, 'manifest')), 'manifest extracted');
      assert.equal(JSON.parse(readFileSync(join(d, 'manifest'), 'utf8')).name, busybox.name);
      const bb = join(d, 'rootfs', 'bin', 'busybox');
      assert.equal(sha256(bb), sha256('/bin/busybox'), 'busybox byte-identical');
      assert.equal(statSync(bb).mode & 0o777, 0o755, 'busybox keeps its mode');
      assert.ok(lstatSync(join(d, 'rootfs', 'bin', 'sh')).isSymbolicLink(), 'applet links stay symlinks');
      assert.equal(readlinkSync(join(d, 'rootfs', 'bin', 'sh')), '/bin/busybox', 'absolute link target kept as is');
      assert.equal(statSync(join(d, 'rootfs', 'tmp')).mode & 0o7777, 0o1777, 'sticky /tmp');

      assertRktError(await rkt(env, ['image', cmd, busybox.shortId, d]));
      assertOk(await rkt(env, ['image', cmd, '--overwrite', busybox.shortId, d]));

      const r = join(env.work, `${cmd}-rootfs`);
      assertOk(await rkt(env, ['image', cmd, '--rootfs-only', busybox.name, r]));
      assert.ok(existsSync(join(r, 'bin', 'busybox')), '--rootfs-only puts the rootfs at the top');
      assert.ok(!existsSync(join(r, 'manifest')), '--rootfs-only has no manifest');
    });
  }

  test('image render applies dependencies and pathWhitelist', async (t) => {
    const env = newEnv(t);
    await trust(env, key, 'example.com/rkt-test');
    const work = env.work;
    const base = await buildAci(work, { name: 'example.com/rkt-test/base', exec: null, files: { 'etc/base-release': 'base\n' } });
    key.sign(base.path);
    const app = await buildAci(work, {
      name: 'example.com/rkt-test/app',
      busybox: false,
      files: { 'app.txt': 'app\n', 'extra.txt': 'not whitelisted\n' },
      dependencies: [{ imageName: base.name, labels: [{ name: 'version', value: '1.0.0' }] }],
      pathWhitelist: ['/bin/busybox', '/bin/sh', '/etc/passwd', '/etc/base-release', '/app.txt'],
    });
    key.sign(app.path);
    assert.equal(await fetchOk(env, [base.path]), base.shortId);
    assert.equal(await fetchOk(env, [app.path]), app.shortId);
    const d = join(work, 'rendered');
    assertOk(await rkt(env, ['image', 'render', '--rootfs-only', app.name, d]));
    for (const f of ['bin/busybox', 'bin/sh', 'etc/passwd', 'etc/base-release', 'app.txt']) assert.ok(lstatSync(join(d, f), { throwIfNoEntry: false }), `rendered rootfs has /${f}`);
    for (const f of ['extra.txt', 'etc/group', 'bin/ls']) assert.equal(lstatSync(join(d, f), { throwIfNoEntry: false }), undefined, `/${f} is not in pathWhitelist, so not rendered`);
    const raw = join(work, 'extracted');
    assertOk(await rkt(env, ['image', 'extract', '--rootfs-only', app.name, raw]));
    assert.ok(existsSync(join(raw, 'extra.txt')), 'extract gives the raw image contents');
    assert.ok(!existsSync(join(raw, 'bin', 'busybox')), 'extract does not apply dependencies');
  });

  test('image verify: OK after render, fails after tampering with the tree store', async (t) => {
    const env = await withBusybox(t);
    assertOk(await rkt(env, ['image', 'render', busybox.shortId, join(env.work, 'r')]));
    assertOk(await rkt(env, ['image', 'verify', busybox.shortId]));
    const trees = entriesIn(join(env.dir, 'cas', 'tree'));
    assert.ok(trees.length > 0, 'render leaves a tree store under cas/tree');
    const victim = trees.map((tr) => join(env.dir, 'cas', 'tree', tr, 'rootfs', 'etc', 'passwd')).find((p) => existsSync(p));
    assert.ok(victim, 'tree store has rootfs/etc/passwd');
    appendFileSync(victim, 'intruder:x:0:0::/:/bin/sh\n');
    assertRktError(await rkt(env, ['image', 'verify', busybox.shortId]), { multi: true });
  });

  test('image rm by ID and by name', async (t) => {
    const env = await withBusybox(t);
    const r = assertOk(await rkt(env, ['image', 'rm', busybox.shortId]));
    const all = r.stdout + r.stderr;
    assert.match(all, /successfully removed aci for image: "sha512-[0-9a-f]+"/);
    assert.match(all, /1 image\(s\) successfully removed/);
    await assertStoreEmpty(env, 'after image rm');
    await fetchOk(env, [busybox.path]);
    assertOk(await rkt(env, ['image', 'rm', busybox.name]));
    await assertStoreEmpty(env, 'after image rm by name');
    assertRktError(await rkt(env, ['image', 'rm', busybox.shortId]), { multi: true });
  });

  test('image gc drops tree stores, then images unused for longer than the grace period', async (t) => {
    const env = await withBusybox(t);
    assertOk(await rkt(env, ['image', 'render', busybox.shortId, join(env.work, 'r')]));
    assert.ok(entriesIn(join(env.dir, 'cas', 'tree')).length > 0, 'render made a tree store');
    assertOk(await rkt(env, ['image', 'gc']));
    assert.deepEqual(entriesIn(join(env.dir, 'cas', 'tree')), [], 'tree stores unreferenced by pods are removed');
    assert.equal((await listRows(env)).length, 1, 'a recently used image survives the default 24h grace period');
    assertOk(await rkt(env, ['image', 'gc', '--grace-period=0s']));
    await assertStoreEmpty(env, 'after image gc --grace-period=0s');
  });
});

describe('fetch over HTTPS', { skip: skipAll }, () => {
  test('https:// URL with the signature beside it', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    server.serveFile('/images/busybox.aci', busybox.path, `${busybox.path}.asc`);
    assert.equal(await fetchOk(env, [server.url('/images/busybox.aci')], { env: server.caEnv }), busybox.shortId);
    assert.ok(server.requests('/images/busybox.aci').some((r) => r.status === 200), 'ACI downloaded');
    assert.ok(server.requests('/images/busybox.aci.asc').length > 0, 'signature downloaded from URL.asc');
  });

  test('a server certificate from an unknown CA is refused, unless --insecure-options=tls', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    server.serveFile('/images/tls.aci', busybox.path, `${busybox.path}.asc`);
    assertRktError(await rkt(env, ['fetch', server.url('/images/tls.aci')]));
    await assertStoreEmpty(env, 'unknown CA');
    assert.equal(await fetchOk(env, ['--insecure-options=tls', server.url('/images/tls.aci')]), busybox.shortId);
  });

  test('pull-policy update revalidates with If-None-Match and reuses the stored image on 304', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    server.serveFile('/images/etag.aci', busybox.path, `${busybox.path}.asc`, { etag: '"busybox-v1"' });
    assert.equal(await fetchOk(env, [server.url('/images/etag.aci')], { env: server.caEnv }), busybox.shortId);
    assert.equal(await fetchOk(env, ['--pull-policy=update', server.url('/images/etag.aci')], { env: server.caEnv }), busybox.shortId);
    const reqs = server.requests('/images/etag.aci');
    assert.ok(reqs.length >= 2, 'second fetch asked the server again');
    assert.equal(reqs.at(-1)?.headers['if-none-match'], '"busybox-v1"', 'with the stored ETag');
    assert.equal(reqs.at(-1)?.status, 304);
    const before = server.requests('/images/etag.aci').length;
    assert.equal(await fetchOk(env, ['--pull-policy=new', server.url('/images/etag.aci')], { env: server.caEnv }), busybox.shortId);
    assert.equal(server.requests('/images/etag.aci').length, before, '--pull-policy=new uses the store without asking');
    assert.equal((await listRows(env)).length, 1);
  });

  test('an unreachable URL and a 404 fail cleanly', async (t) => {
    const env = newEnv(t);
    const closed = await startServer({ certs });
    const deadUrl = closed.url('/gone.aci');
    await closed.close();
    assertRktError(await rkt(env, ['fetch', '--insecure-options=image', deadUrl], { env: server.caEnv, timeout: 60_000 }));
    assertRktError(await rkt(env, ['fetch', '--insecure-options=image', server.url('/no/such.aci')], { env: server.caEnv }));
    await assertStoreEmpty(env, 'unreachable');
  });

  test('http:// is refused without --insecure-options=http', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    const plain = await startServer({ tls: false });
    t.after(() => plain.close());
    plain.serveFile('/busybox.aci', busybox.path, `${busybox.path}.asc`);
    assertRktError(await rkt(env, ['fetch', plain.url('/busybox.aci')]));
    assert.equal(plain.log.length, 0, 'no request is made over plain HTTP');
    await assertStoreEmpty(env, 'http refused');
    assert.equal(await fetchOk(env, ['--insecure-options=http', plain.url('/busybox.aci')]), busybox.shortId);
  });
});

describe('appc discovery on 127.0.0.1:443', { skip: skipAll || (port443.ok ? false : port443.reason) }, () => {
  let s443: TestServer;
  let disc: Aci; // 127.0.0.1/rkt-test/busybox:1.0.0
  let parent: Aci; // 127.0.0.1/rkt-test/parent/busybox:2.0.0, discovered via the parent path
  const template = 'https://127.0.0.1/aci/{name}-{version}-{os}-{arch}.{ext}';

  before(async () => {
    s443 = await startServer({ port: 443, certs });
    disc = await buildAci(fx, { name: '127.0.0.1/rkt-test/busybox', fileName: 'disc.aci' });
    key.sign(disc.path);
    parent = await buildAci(fx, { name: '127.0.0.1/rkt-test/parent/busybox', version: '2.0.0', fileName: 'parent.aci' });
    key.sign(parent.path);
    s443.discovery('/rkt-test/busybox', {
      discovery: [['127.0.0.1/rkt-test/busybox', template]],
      pubkeys: [['127.0.0.1/rkt-test', 'https://127.0.0.1/keys/rkt-test.gpg']],
    });
    s443.discovery('/rkt-test/parent', { discovery: [['127.0.0.1/rkt-test/parent', template]] });
    s443.serveFile('/aci/127.0.0.1/rkt-test/busybox-1.0.0-linux-amd64.aci', disc.path, `${disc.path}.asc`);
    s443.serveFile('/aci/127.0.0.1/rkt-test/parent/busybox-2.0.0-linux-amd64.aci', parent.path, `${parent.path}.asc`);
    s443.route('/keys/rkt-test.gpg', { body: key.publicKey, headers: { 'Content-Type': 'application/pgp-keys' } });
  });
  after(async () => {
    await s443?.close();
  });

  test('trust by discovery (ac-discovery-pubkeys), then fetch by name', async (t) => {
    const env = newEnv(t);
    assertOk(await rkt(env, ['trust', '--prefix=127.0.0.1/rkt-test/busybox', '--skip-fingerprint-review'], { env: server.caEnv }), 'rkt trust by discovery');
    assert.ok(filesUnder(join(env.localConfig, 'trustedkeys')).some((f) => f.endsWith(key.fingerprint)), 'discovered key stored under its fingerprint');
    assert.ok(s443.requests('/keys/rkt-test.gpg').length > 0, 'pubkey fetched from the ac-discovery-pubkeys URL');
    assert.equal(await fetchOk(env, ['127.0.0.1/rkt-test/busybox:1.0.0'], { env: server.caEnv }), disc.shortId);
    assert.ok(s443.log.some((l) => l.path === '/rkt-test/busybox' && l.query.get('ac-discovery') === '1'), 'discovery page requested');
    assert.ok(s443.requests('/aci/127.0.0.1/rkt-test/busybox-1.0.0-linux-amd64.aci.asc').length > 0, 'signature fetched from the template with ext=aci.asc');
    const rows = await listRows(env);
    assert.equal(rows.length, 1);
    assert.ok(rows[0]?.[1]?.startsWith('127.0.0.1/rkt-test/busybox'));
  });

  test('discovery retries with the parent path', async (t) => {
    const env = newEnv(t);
    await trust(env, key, '127.0.0.1/rkt-test');
    assert.equal(await fetchOk(env, ['127.0.0.1/rkt-test/parent/busybox:2.0.0'], { env: server.caEnv }), parent.shortId);
    assert.ok(s443.log.some((l) => l.path === '/rkt-test/parent' && l.query.get('ac-discovery') === '1'), 'parent path tried');
  });

  test('discovered image signed by an untrusted key is refused', async (t) => {
    const env = newEnv(t);
    await trust(env, otherKey, '127.0.0.1/rkt-test');
    assertRktError(await rkt(env, ['fetch', '127.0.0.1/rkt-test/busybox:1.0.0'], { env: server.caEnv }));
    await assertStoreEmpty(env, 'discovery, untrusted');
  });

  test('an unknown name fails cleanly', async (t) => {
    const env = newEnv(t);
    assertRktError(await rkt(env, ['fetch', '--insecure-options=image', '127.0.0.1/rkt-test/nothing-here:1.0.0'], { env: server.caEnv }));
    await assertStoreEmpty(env, 'discovery, unknown name');
  });
});

describe('concurrency', { skip: skipAll }, () => {
  test('20 parallel fetches of distinct images into one --dir', async (t) => {
    const env = newEnv(t);
    const images = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        buildAci(env.work, { name: `example.com/rkt-test/par-${i}`, busybox: false, exec: ['/bin/true'], files: { 'id.txt': `${i}\n` } }),
      ),
    );
    const results = await Promise.all(images.map((img) => rkt(env, ['fetch', '--insecure-options=image', img.path])));
    results.forEach((r, i) => {
      assertOk(r, `parallel fetch ${i}`);
      assert.equal(r.stdout.trim(), images[i]?.shortId);
    });
    const rows = await listRows(env, ['--full']);
    assert.equal(rows.length, 20, 'image list shows 20 images');
    assert.deepEqual(new Set(rows.map((r) => r[0])), new Set(images.map((i) => i.id)));
    const json = await listJson(env);
    assert.equal(json.length, 20);
  });

  test('10 parallel fetches of the same image store it once', async (t) => {
    const env = newEnv(t);
    await trust(env, key, busybox.name);
    const results = await Promise.all(Array.from({ length: 10 }, () => rkt(env, ['fetch', busybox.path])));
    for (const r of results) assert.equal(assertOk(r).stdout.trim(), busybox.shortId);
    assert.equal((await listRows(env)).length, 1);
    assertOk(await rkt(env, ['image', 'render', busybox.shortId, join(env.work, 'r')]));
    assertOk(await rkt(env, ['image', 'verify', busybox.shortId]), 'the image stored by concurrent fetches is intact');
  });
});

describe('bad archives: one error line, exit 254, nothing stored', { skip: skipAll }, () => {
  const passwdBefore = existsSync('/etc/passwd') ? sha256('/etc/passwd') : '';
  for (const kind of BAD_KINDS) {
    test(`${kind}: ${BAD_DESCRIPTIONS[kind]}`, async (t) => {
      const env = newEnv(t);
      const bad = await buildBadAci(fx, kind);
      assertOk(await rkt(env, ['image', 'list']), 'store initialises');
      const filesBefore = storeFiles(env);
      const r = await rkt(env, ['fetch', '--insecure-options=image', bad]);
      const escaped = existsSync(ABS_ESCAPE_PATH);
      if (escaped) rmSync(join(ABS_ESCAPE_PATH, '..'), { recursive: true, force: true });
      assertRktError(r);
      assert.ok(!escaped, `${ABS_ESCAPE_PATH} was written on the host`);
      await assertStoreEmpty(env, kind);
      const added = [...storeFiles(env)].filter((f) => !filesBefore.has(f));
      assert.deepEqual(added, [], 'no new files in the data dir');
      const strays = filesUnder(env.base).filter((f) => /(^|\/)evil$|(^|\/)etc\/passwd$/.test(f));
      assert.deepEqual(strays, [], 'nothing written outside the rootfs');
      assert.equal(sha256('/etc/passwd'), passwdBefore, 'host /etc/passwd untouched');
    });
  }
});
