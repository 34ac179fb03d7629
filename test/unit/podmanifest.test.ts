import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunArgs } from '../../src/cli/apps.ts';
import { PREPARE_FLAGS, RUN_FLAGS } from '../../src/cli/commands/run.ts';
import { exposedPortRequests } from '../../src/net/ports.ts';
import { appArgs, checkManifestFlags, parsePodManifest } from '../../src/pod/podmanifest.ts';

const ID = `sha512-${'a'.repeat(64)}`;

function pod(edit: (m: Record<string, unknown>) => void = () => {}): string {
  const m: Record<string, unknown> = {
    acKind: 'PodManifest',
    acVersion: '0.8.11',
    apps: [
      {
        name: 'web',
        image: { name: 'example.com/web', id: ID },
        app: { exec: ['/bin/httpd', '-f'], user: 'www', group: 'www', environment: [{ name: 'A', value: '1' }], ports: [{ name: 'http', protocol: 'tcp', port: 80 }] },
        readOnlyRootFS: true,
        mounts: [{ volume: 'data', path: '/data' }],
        annotations: [{ name: 'example.com/x', value: 'a=b' }],
      },
      { name: 'side', image: { id: 'sha512-abc' } },
    ],
    volumes: [
      { name: 'data', kind: 'host', source: '/srv/data', readOnly: true },
      { name: 'tmp', kind: 'empty', mode: '0700', uid: 5, gid: 6 },
    ],
    isolators: null,
    annotations: [{ name: 'example.com/pod', value: 'p' }],
    ports: [{ name: 'http', hostPort: 8080, hostIP: '127.0.0.1' }],
    userLabels: { team: 'a' },
  };
  edit(m);
  return JSON.stringify(m);
}

const apps = (m: Record<string, unknown>) => m.apps as Record<string, unknown>[];
const bad = (text: string, re: RegExp) => assert.throws(() => parsePodManifest(text, 'pod.json'), (e: Error & { code?: string }) => {
  assert.match(e.message, /^invalid pod manifest pod\.json: /);
  assert.match(e.message, re);
  assert.equal(e.code, 'INVALID_MANIFEST');
  return true;
});

test('pod manifest: apps, volumes and pod fields converted', () => {
  const m = parsePodManifest(pod(), 'pod.json');
  assert.equal(m.apps.length, 2);
  const [web, side] = m.apps;
  assert.deepEqual(web, {
    name: 'web',
    imageId: ID,
    app: { exec: ['/bin/httpd', '-f'], user: 'www', group: 'www', environment: [{ name: 'A', value: '1' }], ports: [{ name: 'http', protocol: 'tcp', port: 80 }] },
    readOnlyRootFS: true,
    mounts: [{ volume: 'data', path: '/data' }],
    annotations: [{ name: 'example.com/x', value: 'a=b' }],
  });
  assert.deepEqual(side, { name: 'side', imageId: 'sha512-abc', app: undefined, readOnlyRootFS: false, mounts: [], annotations: [] });
  assert.deepEqual(m.volumes, [
    { name: 'data', kind: 'host', source: '/srv/data', readOnly: true },
    { name: 'tmp', kind: 'empty', mode: '0700', uid: 5, gid: 6 },
  ]);
  assert.deepEqual(m.ports, [{ name: 'http', hostIp: '127.0.0.1', hostPort: 8080 }]);
  assert.deepEqual(m.fields, {
    acVersion: '0.8.11',
    isolators: [],
    annotations: [{ name: 'example.com/pod', value: 'p' }],
    ports: [{ name: 'http', hostPort: 8080, hostIP: '127.0.0.1' }],
    userLabels: { team: 'a' },
  });
});

test('pod manifest: nulls as Go writes them are accepted', () => {
  const m = parsePodManifest(pod((m) => {
    m.volumes = null;
    m.ports = null;
    m.annotations = null;
    apps(m)[0] = { name: 'web', image: { id: ID, labels: null }, app: null, mounts: null, annotations: null };
  }), 'pod.json');
  assert.deepEqual(m.volumes, []);
  assert.deepEqual(m.ports, []);
  assert.equal(m.apps[0]?.app, undefined);
});

test('pod manifest: structural errors name the field', () => {
  bad('{"acKind":', /not valid JSON/);
  bad('[1]', /not a JSON object/);
  bad(pod((m) => { m.acKind = 'ImageManifest'; }), /acKind is "ImageManifest", not "PodManifest"/);
  bad(pod((m) => { delete m.acKind; }), /acKind is missing/);
  bad(pod((m) => { delete m.acVersion; }), /field "acVersion" is missing/);
  bad(pod((m) => { m.apps = []; }), /it has no apps/);
  bad(pod((m) => { delete m.apps; }), /it has no apps/);
  bad(pod((m) => { apps(m)[1]!.name = 'Web'; }), /field "apps\[1\]\.name" is not a valid AC Name \("Web"\)/);
  bad(pod((m) => { apps(m)[1]!.image = {}; }), /field "apps\[1\]\.image\.id" is missing/);
  bad(pod((m) => { apps(m)[1]!.image = { id: 'abc' }; }), /field "apps\[1\]\.image\.id" is not an image ID/);
  bad(pod((m) => { (apps(m)[0]!.app as Record<string, unknown>).user = 0; }), /field "apps\[0\]\.app\.user": expected string, got 0/);
  bad(pod((m) => { delete (apps(m)[0]!.app as Record<string, unknown>).group; }), /field "apps\[0\]\.app\.group" is missing/);
  bad(pod((m) => { (m.volumes as Record<string, unknown>[])[1]!.kind = 'nfs'; }), /field "volumes\[1\]\.kind": expected/);
});

test('pod manifest: semantic errors', () => {
  bad(pod((m) => { apps(m)[1]!.name = 'web'; }), /duplicate app name "web"/);
  bad(pod((m) => { (m.volumes as Record<string, unknown>[])[1]!.name = 'data'; }), /duplicate volume "data"/);
  bad(pod((m) => { apps(m)[0]!.mounts = [{ volume: 'nope', path: '/x' }]; }), /app "web": mount \/x names volume "nope", which "volumes" does not declare/);
  bad(pod((m) => { apps(m)[0]!.mounts = [{ volume: 'data', path: '/x' }, { volume: 'tmp', path: '/x' }]; }), /duplicate mount path in app "web": "\/x"/);
  bad(pod((m) => { apps(m)[0]!.mounts = [{ volume: 'data', path: 'x' }]; }), /"apps\[0\]\.mounts\[0\]\.path" must be an absolute path/);
  bad(pod((m) => { (apps(m)[0]!.app as Record<string, unknown>).exec = []; }), /app "web": its app section has no "exec"/);
  bad(pod((m) => { delete (m.volumes as Record<string, unknown>[])[0]!.source; }), /volume "data": kind "host" needs a "source"/);
  bad(pod((m) => { (m.volumes as Record<string, unknown>[])[0]!.source = 'rel'; }), /volume "data": "source" must be an absolute path/);
  bad(pod((m) => { (m.volumes as Record<string, unknown>[])[0]!.mode = '0755'; }), /volume "data": "mode" applies to empty volumes only/);
  bad(pod((m) => { (m.volumes as Record<string, unknown>[])[1]!.source = '/x'; }), /volume "tmp": an empty volume has no "source"/);
  bad(pod((m) => { (m.volumes as Record<string, unknown>[])[1]!.mode = '999'; }), /is not an octal mode/);
  bad(pod((m) => { m.ports = [{ name: 'http', hostPort: 0 }]; }), /port "http": hostPort must be in 1-65535/);
  bad(pod((m) => { m.ports = [{ name: 'http', hostPort: 80, hostIP: 'nope' }]; }), /hostIP must be an IPv4 address/);
  bad(pod((m) => { m.ports = [{ name: 'a', hostPort: 80 }, { name: 'a', hostPort: 81 }]; }), /port "a" forwarded twice/);
});

test('pod manifest: the flags it replaces are refused, the others pass', () => {
  const refused = (argv: string[], re: RegExp, flags = RUN_FLAGS) => assert.throws(() => checkManifestFlags(parseRunArgs(['--pod-manifest=p.json', ...argv], flags)), re);
  refused(['example.com/img'], /image arguments cannot be used with --pod-manifest \(got "example\.com\/img"\)/);
  refused(['--volume=v,kind=empty'], /RktError: --volume cannot be used with --pod-manifest/);
  refused(['--mount=volume=v,target=/v'], /RktError: --mount cannot/);
  refused(['--port=http:80'], /RktError: --port cannot/);
  refused(['--inherit-env', '--set-env=A=B', '--set-env-file=f'], /RktError: --inherit-env, --set-env, --set-env-file cannot/);
  refused(['--pull-policy=update'], /RktError: --pull-policy cannot/);
  refused(['--store-only'], /RktError: --store-only cannot/, PREPARE_FLAGS);
  for (const ok of [['--net=none', '--no-overlay', '--interactive', '--hostname=h', '--uuid-file-save=f', '--dns=host', '--private-users', '--pull-policy=new'], []]) {
    checkManifestFlags(parseRunArgs(['--pod-manifest=p.json', ...ok], RUN_FLAGS));
  }
  checkManifestFlags(parseRunArgs(['--pod-manifest=p.json', '--quiet', '--no-overlay'], PREPARE_FLAGS));
});

test('pod manifest: an app as the CLI grammar would give it', () => {
  const [web] = parsePodManifest(pod(), 'pod.json').apps;
  const a = appArgs(web!);
  assert.equal(a.image, ID);
  assert.equal(a.args, undefined);
  assert.equal(a.flags.name, 'web');
  assert.equal(a.flags['readonly-rootfs'], true);
  assert.deepEqual(a.flags.annotation, ['example.com/x=a=b']);
  assert.equal(a.flags.exec, '', 'the app section is applied by preparePod, not as flags');
  assert.deepEqual(a.flags.mount, []);
});

test('exposed ports as forwarding requests', () => {
  assert.deepEqual(exposedPortRequests(null), []);
  assert.deepEqual(exposedPortRequests([{ name: 'a', hostPort: 80 }, { name: 'b', hostPort: 81, hostIP: null }, { name: 'c', hostPort: 82, hostIP: '10.0.0.1' }]), [
    { name: 'a', hostIp: '', hostPort: 80 },
    { name: 'b', hostIp: '', hostPort: 81 },
    { name: 'c', hostIp: '10.0.0.1', hostPort: 82 },
  ]);
  assert.throws(() => exposedPortRequests([{ name: 'a', hostPort: 80 }, { name: 'b', hostPort: 80 }]), /host port 80 given twice/);
  assert.throws(() => exposedPortRequests([{ name: 'a', hostPort: 1.5 }]), /hostPort must be in 1-65535/);
});
