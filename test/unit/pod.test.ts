import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { secureJoin } from '../../src/lib/securejoin.ts';
import { buildEnv, parseEnvFile } from '../../src/pod/env.ts';
import { defaultAppName, parseMount, parseVolume, resolveMounts, type Volume } from '../../src/pod/manifest.ts';
import { parseDb, resolveGroup, resolveUser } from '../../src/pod/users.ts';
import { appSpec, DEFAULT_CAPS } from '../../src/stage1/oci.ts';
import { hostsFile } from '../../src/stage1/launch.ts';

test('env precedence: host < image < file < --set-env < --environment, then defaults', () => {
  const env = buildEnv({
    host: { A: 'host', B: 'host', HOME: '/h' },
    image: [{ name: 'B', value: 'image' }, { name: 'C', value: 'image' }],
    envFile: [['C', 'file'], ['D', 'file']],
    setEnv: [['D', 'set'], ['E', 'set']],
    environment: [['E', 'app']],
    appName: 'web',
  });
  const m = Object.fromEntries(env.map((e) => [e.name, e.value]));
  assert.equal(m.A, 'host');
  assert.equal(m.B, 'image');
  assert.equal(m.C, 'file');
  assert.equal(m.D, 'set');
  assert.equal(m.E, 'app');
  assert.equal(m.HOME, '/h');
  assert.equal(m.PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  assert.equal(m.AC_APP_NAME, 'web');
  assert.deepEqual(parseEnvFile('# c\n\n;x\nK=V=W\n', 'f'), [['K', 'V=W']]);
  assert.throws(() => parseEnvFile('novalue\n', 'f'), /not KEY=VALUE/);
});

test('volumes and mounts', () => {
  assert.deepEqual(parseVolume('data,kind=host,source=/srv,readOnly=true'), { name: 'data', kind: 'host', source: '/srv', readOnly: true });
  assert.deepEqual(parseVolume('tmp,kind=empty,mode=0700,uid=5,gid=6'), { name: 'tmp', kind: 'empty', mode: '0700', uid: 5, gid: 6 });
  assert.throws(() => parseVolume('data,kind=host'), /absolute source/);
  assert.throws(() => parseVolume('data,kind=nfs'), /kind must be/);
  assert.deepEqual(parseMount('volume=data,target=/d'), { volume: 'data', path: '/d' });
  assert.throws(() => parseMount('volume=data'), /expected volume=NAME/);
  const vols: Volume[] = [{ name: 'data', kind: 'host', source: '/srv' }];
  const warnings: string[] = [];
  const m = resolveMounts('app', [{ name: 'cache', path: '/cache' }], [{ volume: 'data', path: '/d' }], vols, (w) => warnings.push(w));
  assert.deepEqual(m, [{ volume: 'app-cache', path: '/cache' }, { volume: 'data', path: '/d' }]);
  assert.equal(vols.at(-1)?.name, 'app-cache');
  assert.equal(warnings.length, 1);
  assert.throws(() => resolveMounts('app', [], [{ volume: 'nope', path: '/x' }], vols, () => {}), /no --volume defines/);
  assert.equal(defaultAppName('example.com/my_app'), 'my-app');
});

test('users: numeric, names from the image, paths; symlinks cannot leave the root', () => {
  const root = mkdtempSync(join(tmpdir(), 'rkt-users-'));
  try {
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:33:34::/var/www:/bin/false\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nwww:x:34:\n');
    assert.deepEqual(resolveUser(root, '1000'), { uid: 1000, gid: undefined });
    assert.deepEqual(resolveUser(root, 'web'), { uid: 33, gid: 34 });
    assert.equal(resolveGroup(root, 'www'), 34);
    assert.throws(() => resolveUser(root, 'nobody'), /unknown user "nobody"/);
    assert.equal(parseDb(['a:x:1:2:']).get('a')?.[1], 2);
    symlinkSync('/etc', join(root, 'hostetc'));
    symlinkSync('../../../..', join(root, 'up'));
    assert.equal(secureJoin(root, '/hostetc/passwd'), join(root, 'etc/passwd'));
    assert.equal(secureJoin(root, '/up/etc'), join(root, 'etc'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('OCI spec: init wrapper, namespaces, caps, masked paths', () => {
  const spec = appSpec({
    rootfs: '/r', readonlyRootfs: true, args: ['/bin/sh'], env: ['A=1'], cwd: '/', uid: 0, gid: 0, additionalGids: [], hostname: 'h',
    terminal: false, namespaces: { pid: 'new', network: 'host', ipc: 'new', uts: 'new' }, mounts: [], init: '/usr/bin/catatonit',
    caps: DEFAULT_CAPS, insecurePaths: false, cgroupsPath: '/x', noNewPrivileges: false,
  }) as { process: { args: string[]; capabilities: { bounding: string[] } }; linux: { namespaces: { type: string }[]; maskedPaths: string[] }; root: { readonly: boolean }; hostname: string };
  assert.deepEqual(spec.process.args, ['/dev/init', '--', '/bin/sh']);
  assert.deepEqual(spec.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'pid', 'uts']);
  assert.equal(spec.process.capabilities.bounding.length, 14);
  assert.ok(spec.linux.maskedPaths.includes('/proc/kcore'));
  assert.equal(spec.root.readonly, true);
  assert.equal(spec.hostname, 'h');
  assert.match(hostsFile('rkt-x'), /^127\.0\.0\.1\tlocalhost .* rkt-x\n/);
});
