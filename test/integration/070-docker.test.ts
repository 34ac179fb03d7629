// Docker and OCI images end to end against real peers: Debian's
// docker-registry on 127.0.0.1 (started here), images pushed with skopeo
// from OCI layouts built here, a proxy in front for token auth and faults.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeFileSync, mkdirSync } from 'node:fs';
import { RKT_BIN, assertOk, assertRktError, makeEnv, rkt, type RktEnv } from '../helpers/rkt.ts';
import { skopeo, skopeoCacheGuard, startProxy, startRegistry, writeOciLayout, type Entry, type Proxy, type RegistryProc } from '../helpers/oci.ts';

const isRoot = process.getuid?.() === 0;
const have = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const skip = !isRoot ? 'needs root' : !['docker-registry', 'skopeo', 'runc', 'setfattr', 'busybox'].every(have) ? 'missing docker-registry/skopeo/runc/setfattr/busybox' : false;

const BUSYBOX = spawnSync('sh', ['-c', 'command -v busybox']).stdout?.toString().trim() ?? '/bin/busybox';

function busyboxLayer(): Entry[] {
  const e: Entry[] = [{ name: 'bin/', type: 'directory' }, { name: 'bin/busybox', body: readFileSync(BUSYBOX), mode: 0o755 }];
  for (const a of ['sh', 'ls', 'cat', 'echo', 'id', 'stat', 'true', 'sleep', 'test', 'readlink']) e.push({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  e.push({ name: 'etc/', type: 'directory' }, { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\nweb:x:1234:2345:web:/:/bin/sh\n' }, { name: 'etc/group', body: 'root:x:0:\nweb:x:2345:\n' });
  return e;
}

describe('docker and oci images', { skip, concurrency: false }, () => {
  let env: RktEnv;
  let reg: RegistryProc;
  let proxy: Proxy;
  let R: string; // direct registry host:port
  let P: string; // proxy host:port
  const I = ['--insecure-options=image,http'];

  const storeState = () => {
    const cas = join(env.dir, 'cas');
    const walk = (d: string): string[] => (existsSync(d) ? readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() && !d.includes('/tree/') ? [join(d, n), ...walk(join(d, n))] : [join(d, n)])) : []);
    const list = spawnSync(RKT_BIN, [...env.globalArgs, 'image', 'list', '--format=json']).stdout.toString();
    return { files: [...walk(join(cas, 'blob')), ...walk(join(cas, 'tree'))].sort(), tmp: existsSync(join(cas, 'tmp')) ? readdirSync(join(cas, 'tmp')) : [], list };
  };

  let uncache: () => void = () => undefined;

  before(async () => {
    uncache = skopeoCacheGuard();
    env = makeEnv('rkt-docker-');
    reg = await startRegistry(join(env.base, 'registry'));
    proxy = await startProxy(reg.port);
    R = `127.0.0.1:${reg.port}`;
    P = `127.0.0.1:${proxy.port}`;
    const push = async (name: string, spec: Parameters<typeof writeOciLayout>[2]) => {
      const dir = join(env.work, `oci-${name.replace(/[:/]/g, '-')}`);
      await writeOciLayout(dir, 'latest', spec);
      skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${dir}:latest`, `docker://${R}/${name}`]);
      return dir;
    };
    await push('busybox:latest', { layers: [busyboxLayer()], config: { Cmd: ['/bin/sh', '-c', 'echo hello from busybox'], ExposedPorts: { '80/tcp': {} }, Volumes: { '/data': {} } } });
    await push('layered:latest', {
      layers: [
        busyboxLayer(),
        [
          { name: 'data/', type: 'directory' }, { name: 'data/keep', body: 'keep' }, { name: 'data/gone', body: 'gone' },
          { name: 'opq/', type: 'directory' }, { name: 'opq/old1', body: '1' }, { name: 'opq/sub/', type: 'directory' }, { name: 'opq/sub/old2', body: '2' },
          { name: 'suid', body: '#!/bin/sh\n', mode: 0o4755, uid: 1234, gid: 2345 },
          { name: 'xattr', body: 'x', pax: { 'SCHILY.xattr.user.rkt': 'hello' } }, { name: 'hard1', body: 'linked' }, { name: 'hard2', type: 'link', linkname: 'hard1' },
          { name: 'devs/', type: 'directory' }, { name: 'devs/null0', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        ],
        [
          { name: 'data/.wh.gone', body: '' },
          { name: 'opq/', type: 'directory' }, { name: 'opq/.wh..wh..opq', body: '' }, { name: 'opq/new', body: 'new' },
          { name: 'link', type: 'symlink', linkname: '/data/keep' },
        ],
      ],
      config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo default-cmd'], User: 'web', WorkingDir: '/data', Env: ['PATH=/bin', 'FOO=bar'], Volumes: { '/data': {} } },
    });
    await push('escape:latest', { layers: [[{ name: '../evil', body: 'x' }]] });
    await push('badtype:latest', { layers: [[{ name: 'a', body: 'a' }]], layerMediaType: 'application/x-unknown' });
  });

  after(async () => {
    await proxy?.close();
    reg?.stop();
    spawnSync(RKT_BIN, [...(env?.globalArgs ?? []), 'gc', '--grace-period=0s']);
    env?.cleanup();
    uncache();
  });

  test('fetch, list under the full name, run with Cmd, --exec and args', async () => {
    const f = assertOk(await rkt(env, [...I, 'fetch', `docker://${R}/busybox`]), 'fetch');
    assert.match(f.stdout.trim(), /^sha512-[0-9a-f]{32}$/);
    const list = assertOk(await rkt(env, ['image', 'list', '--no-legend']));
    assert.match(list.stdout, new RegExp(`${R.replace(/\./g, '\\.')}/busybox:latest`));
    assert.doesNotMatch(list.stdout, /docker-layer/);
    const m = JSON.parse(assertOk(await rkt(env, ['image', 'cat-manifest', f.stdout.trim()])).stdout);
    assert.deepEqual(m.app.ports, [{ name: '80-tcp', protocol: 'tcp', port: 80 }]);
    assert.deepEqual(m.app.mountPoints, [{ name: 'volume-data', path: '/data' }]);
    assert.ok(m.labels.some((l: { name: string; value: string }) => l.name === 'arch' && l.value === 'amd64'));
    const r1 = assertOk(await rkt(env, [...I, 'run', '--net=none', `docker://${R}/busybox`]), 'run');
    assert.match(r1.stdout, /hello from busybox/);
    const r2 = assertOk(await rkt(env, [...I, 'run', '--net=none', `docker://${R}/busybox`, '--exec', '/bin/echo', '--', 'via', 'exec']));
    assert.match(r2.stdout, /via exec/);
    // signatures: a docker image needs --insecure-options=image
    assertRktError(await rkt(env, ['--insecure-options=http', 'fetch', `docker://${R}/busybox`]), /insecure-options=image|signature/);
  });

  test('layers: whiteouts, opaque dirs, links, devices, setuid, owner, user/workdir, args replace Cmd', async () => {
    // /data is an implicit empty volume, pre-populated from the image (as rkt does for Docker images)
    const script = 'id -u; id -g; pwd; ls /data; ls /opq; test -e /opq/sub && echo SUB; stat -c "%a %u %g" /suid; stat -c %h /hard1; stat -c "%t %T" /devs/null0; readlink /link';
    const r = assertOk(await rkt(env, [...I, 'run', '--net=none', `docker://${R}/layered`, '--', script]), 'run layered');
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines, ['1234', '2345', '/data', 'keep', 'new', '4755 1234 2345', '2', '1 3', '/data/keep']);
    const d = assertOk(await rkt(env, [...I, 'run', '--net=none', `docker://${R}/layered`]));
    assert.match(d.stdout, /default-cmd/);
    // xattrs from pax records are kept
    const withX = readdirSync(join(env.dir, 'cas', 'tree')).map((t) => join(env.dir, 'cas', 'tree', t, 'rootfs', 'xattr')).find((p) => existsSync(p));
    assert.ok(withX, 'a layer holds /xattr');
    assert.equal(spawnSync('getfattr', ['--only-values', '-n', 'user.rkt', withX]).stdout.toString(), 'hello');
    // the base layer is stored once: busybox and layered share it
    const trees = readdirSync(join(env.dir, 'cas', 'tree')).filter((t) => t.startsWith('layer-'));
    assert.equal(trees.length, 3, `layer trees: ${trees}`);
    // render = flattened tree
    const out = join(env.work, 'render');
    assertOk(await rkt(env, ['image', 'render', '--rootfs-only', `docker://${R}/layered`, out].map((a) => a)), 'render');
    assert.ok(existsSync(join(out, 'data', 'keep')) && !existsSync(join(out, 'data', 'gone')) && !existsSync(join(out, 'opq', 'old1')));
    assert.ok(lstatSync(join(out, 'suid')).mode & 0o4000);
    const aci = join(env.work, 'layered.aci');
    assertOk(await rkt(env, ['image', 'export', `docker://${R}/layered`, aci]), 'export');
    const names = spawnSync('tar', ['-tf', aci]).stdout.toString();
    assert.match(names, /^manifest$/m);
    assert.match(names, /^rootfs\/data\/keep$/m);
  });

  test('pull-policy update re-checks the manifest digest', async () => {
    const a = assertOk(await rkt(env, [...I, 'fetch', `docker://${R}/busybox`])).stdout.trim();
    const b = assertOk(await rkt(env, [...I, 'fetch', '--pull-policy=update', `docker://${R}/busybox`])).stdout.trim();
    assert.equal(a, b);
    const dir = join(env.work, 'oci-bb2');
    await writeOciLayout(dir, 'latest', { layers: [busyboxLayer(), [{ name: 'v2', body: '2' }]], config: { Cmd: ['/bin/true'] } });
    skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${dir}:latest`, `docker://${R}/busybox:latest`]);
    const c = assertOk(await rkt(env, [...I, 'fetch', '--pull-policy=new', `docker://${R}/busybox`])).stdout.trim();
    assert.equal(c, a, 'new: store first');
    const d = assertOk(await rkt(env, [...I, 'fetch', `docker://${R}/busybox`])).stdout.trim();
    assert.notEqual(d, a, 'update: new digest pulled');
  });

  test('token auth with dockerAuth credentials', async () => {
    proxy.auth = { user: 'alice', password: 's3cret' };
    try {
      assertRktError(await rkt(env, [...I, 'fetch', `docker://${P}/busybox`]), /refused anonymous access|requires authentication/);
      mkdirSync(join(env.localConfig, 'auth.d'), { recursive: true });
      writeFileSync(join(env.localConfig, 'auth.d', 'reg.json'), JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: [P], credentials: { user: 'alice', password: 'wrong' } }));
      assertRktError(await rkt(env, [...I, 'fetch', `docker://${P}/busybox`]), /refused the credentials/);
      writeFileSync(join(env.localConfig, 'auth.d', 'reg.json'), JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: [P], credentials: { user: 'alice', password: 's3cret' } }));
      assertOk(await rkt(env, [...I, 'fetch', `docker://${P}/busybox`]), 'fetch with token');
      assert.ok(proxy.hits.some((h) => h.startsWith('/token')));
    } finally {
      proxy.auth = undefined;
    }
  });

  test('bad input and faults: one error line, exit 254, store unchanged', async () => {
    const cases: [string, () => void, RegExp, string?][] = [
      ['404', () => undefined, /not found/, 'nosuch'],
      ['401', () => proxy.faults.push({ match: /manifests/, status: 401, count: 10 }), /authentication|401/],
      ['403', () => proxy.faults.push({ match: /manifests/, status: 403 }), /denied.*403/],
      ['429', () => proxy.faults.push({ match: /manifests/, status: 429 }), /429 .*after 4 attempts/],
      ['503', () => proxy.faults.push({ match: /manifests/, status: 503 }), /503 .*after 4 attempts/],
      ['digest', () => proxy.faults.push({ match: /blobs\/sha256/, corrupt: true }), /mismatch|corrupt/],
      ['truncated', () => proxy.faults.push({ match: /blobs\/sha256/, truncate: true }), /truncated|closed|aborted|corrupt|socket/],
      ['malformed', () => proxy.faults.push({ match: /manifests/, status: 200, body: '{"schemaVersion":2,', contentType: 'application/vnd.oci.image.manifest.v1+json' }), /malformed image manifest/],
      ['unsupported manifest', () => proxy.faults.push({ match: /manifests/, status: 200, body: '{"schemaVersion":2,"mediaType":"application/x-foo"}', contentType: 'application/x-foo' }), /unsupported manifest media type/],
      ['unsupported layer', () => undefined, /unsupported layer media type/, 'badtype'],
      ['escape', () => undefined, /escapes the image root/, 'escape'],
    ];
    // warm: a fresh env per case would be slow; compare the same store before/after each failure
    const before0 = storeState();
    for (const [what, setup, re, repo] of cases) {
      proxy.faults.length = 0;
      setup();
      const r = await rkt(env, [...I, 'fetch', `docker://${P}/${repo ?? 'layered'}:${what === 'truncated' || what === 'digest' ? 'latest' : 'latest'}`], { env: { RKT_TEST_CASE: what } });
      try {
        assertRktError(r, re);
      } catch (e) {
        throw new Error(`case ${what}: ${(e as Error).message}`);
      }
      assert.deepEqual(storeState(), before0, `case ${what}: store changed`);
    }
    proxy.faults.length = 0;
  });

  test('extraction on worker threads: the same trees and the same errors', async () => {
    // Big pulls extract on worker threads; RKT_UNPACK_WORKERS=1 forces that path for these small images.
    const env2 = makeEnv('rkt-docker-workers-');
    const W = { RKT_UNPACK_WORKERS: '1' };
    const tree = (dir: string) => {
      const find = spawnSync('find', ['.', '-mindepth', '1', '-printf', '%P|%y|%m|%U|%G|%s|%l|%T@\n'], { cwd: dir }).stdout.toString().split('\n').sort().join('\n')
        // whiteouts and implied parent dirs are made at extraction time; everything else keeps the layer's mtime
        .replace(/\|(?!1600000000\.)\d+\.\d+$/gm, '|now');
      const attrs = spawnSync('getfattr', ['-R', '-h', '-d', '-m', '-', '.'], { cwd: dir }).stdout.toString();
      return `${find}\n${attrs}`;
    };
    try {
      assertOk(await rkt(env, [...I, 'fetch', `docker://${R}/layered`]), 'fetch here');
      assertOk(await rkt(env2, [...I, 'fetch', `docker://${R}/layered`], { env: W }), 'fetch on workers');
      const layers = readdirSync(join(env2.dir, 'cas', 'tree')).filter((t) => t.startsWith('layer-'));
      assert.equal(layers.length, 3);
      for (const l of layers) assert.equal(tree(join(env2.dir, 'cas', 'tree', l, 'rootfs')), tree(join(env.dir, 'cas', 'tree', l, 'rootfs')), `layer ${l}`);
      const before = readdirSync(join(env2.dir, 'cas', 'tree')).sort();
      for (const [what, setup, re, repo] of [
        ['digest', () => proxy.faults.push({ match: /blobs\/sha256/, corrupt: true }), /mismatch|corrupt/, 'busybox'],
        ['truncated', () => proxy.faults.push({ match: /blobs\/sha256/, truncate: true }), /truncated|closed|aborted|corrupt|socket/, 'busybox'],
        ['escape', () => undefined, /escapes the image root/, 'escape'],
      ] as const) {
        proxy.faults.length = 0;
        setup();
        assertRktError(await rkt(env2, [...I, 'fetch', `docker://${P}/${repo}`], { env: { ...W, RKT_TEST_CASE: what } }), re);
        assert.deepEqual(readdirSync(join(env2.dir, 'cas', 'tree')).sort(), before, `case ${what}: store changed`);
        assert.deepEqual(readdirSync(join(env2.dir, 'cas', 'tmp')), [], `case ${what}: leftovers in cas/tmp`);
      }
    } finally {
      proxy.faults.length = 0;
      env2.cleanup();
    }
  });

  for (const [sig, workers] of [['SIGINT', '0'], ['SIGKILL', '0'], ['SIGINT', '1'], ['SIGKILL', '1']] as const) {
    test(`${sig} mid-pull leaves nothing gc cannot remove; the next pull works${workers === '1' ? ' (worker threads)' : ''}`, async () => {
      const env2 = makeEnv('rkt-docker-kill-');
      try {
        proxy.faults.push({ match: /blobs\/sha256/, slowMs: 20 });
        const child = spawn(RKT_BIN, [...env2.globalArgs, ...I, 'fetch', `docker://${P}/layered`], { stdio: 'ignore', env: { ...process.env, RKT_UNPACK_WORKERS: workers } });
        const closed = new Promise((r) => child.on('close', r));
        await new Promise((r) => setTimeout(r, 1500));
        child.kill(sig);
        await closed;
        proxy.faults.length = 0;
        assert.equal(assertOk(await rkt(env2, ['image', 'list', '--no-legend'])).stdout, '', 'nothing indexed');
        assertOk(await rkt(env2, ['image', 'gc']), 'gc');
        assert.deepEqual(readdirSync(join(env2.dir, 'cas', 'tmp')), []);
        assertOk(await rkt(env2, [...I, 'fetch', `docker://${P}/layered`]), 'fetch after kill');
      } finally {
        proxy.faults.length = 0;
        env2.cleanup();
      }
    });
  }

  test('docker-archive (skopeo) and oci layouts', async () => {
    const arch = join(env.work, 'bb.tar');
    skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${R}/layered:latest`, `docker-archive:${arch}:example.com/layered:v1`]);
    const id = assertOk(await rkt(env, [...I, 'fetch', `docker-archive:${arch}`]), 'docker-archive').stdout.trim();
    const list = assertOk(await rkt(env, ['image', 'list', '--no-legend', '--fields=id,name', '--full'])).stdout;
    assert.match(list, /example\.com\/layered:v1/);
    const r = assertOk(await rkt(env, [...I, 'run', '--net=none', id, '--', 'ls /data']));
    assert.equal(r.stdout.trim(), 'keep');
    const broken = join(env.work, 'broken.tar');
    writeFileSync(broken, readFileSync(arch).subarray(0, 3000));
    assertRktError(await rkt(env, [...I, 'fetch', `docker-archive:${broken}`]), /truncated|corrupt|manifest\.json|archive/);
    const oci = join(env.work, 'oci-layered-latest');
    assertOk(await rkt(env, [...I, 'fetch', `oci:${oci}:latest`]), 'oci layout');
    const ociArch = join(env.work, 'layered-oci.tar');
    skopeo(['copy', '--quiet', `oci:${oci}:latest`, `oci-archive:${ociArch}:latest`]);
    assertOk(await rkt(env, [...I, 'fetch', `oci-archive:${ociArch}`]), 'oci-archive');
  });

  test('image rm reclaims layers no image uses', async () => {
    const trees = () => readdirSync(join(env.dir, 'cas', 'tree')).filter((t) => t.startsWith('layer-')).length;
    const n0 = trees();
    assertOk(await rkt(env, ['image', 'rm', `docker://${R}/busybox`]));
    assert.equal(trees(), n0, 'the image fetched through the proxy still uses the v2 layer');
    assertOk(await rkt(env, ['image', 'rm', `docker://${P}/busybox`]));
    assert.equal(trees(), n0 - 1, 'the v2 layer went away with its last image');
    assertOk(await rkt(env, ['gc', '--grace-period=0s']));
    assertOk(await rkt(env, ['image', 'gc', '--grace-period=0s']));
    assert.equal(trees(), 0);
    const l = assertOk(await rkt(env, ['image', 'list', '--no-legend'])).stdout.trim();
    assert.equal(l, '');
  });
});
