// `rkt run|prepare --pod-manifest=FILE` end to end: real runc, real
// overlayfs, against a throwaway --dir. Bad manifests must fail with one
// `rkt: …` line and leave no pod behind; the leak check runs after the file.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildAci, fixturesAvailable, type Aci } from '../helpers/aci.ts';
import { httpGet } from '../helpers/https.ts';
import { assertNoLeaks, snapshot, type Snapshot } from '../helpers/leaks.ts';
import { RKT_BIN, assertOk, assertRktError, describeRun, entriesIn, makeEnv, rkt, type RktEnv } from '../helpers/rkt.ts';

const isRoot = process.getuid?.() === 0;
const fx = fixturesAvailable();
const hasRunc = spawnSync('runc', ['--version']).status === 0;
const skip = !isRoot ? 'needs root' : !fx.ok ? `missing fixtures: ${fx.missing.join(', ')}` : !hasRunc ? 'runc not installed' : false;
if (skip) console.log(`# skipping pod manifest tests: ${skip}`);

const IMG = 'example.com/rkt-test/pm-busybox';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface WrittenApp {
  name: string;
  image: { name: string; id: string; labels: { name: string; value: string }[] };
  app: { exec: string[]; user: string; group: string; environment: { name: string; value: string }[] };
  readOnlyRootFS?: boolean;
  mounts: { volume: string; path: string }[];
  annotations: { name: string; value: string }[];
}

interface Written {
  acKind: string;
  acVersion: string;
  apps: WrittenApp[];
  volumes: { name: string; kind: string }[];
  annotations: { name: string; value: string }[];
  userLabels?: Record<string, string>;
}

describe('pod manifests', { skip, concurrency: false }, () => {
  let env: RktEnv;
  let img: Aci;
  let before0: Snapshot;
  let hostDir: string;
  let n = 0;

  before(async () => {
    before0 = snapshot();
    env = makeEnv('rkt-podmanifest-');
    img = await buildAci(env.work, {
      name: IMG,
      // The "reader" app (no app section in the pod manifest) runs this.
      exec: ['/bin/sh', '-c', 'for i in $(seq 100); do [ -f /scratch/done ] && break; sleep 0.1; done; echo "reader: $FROM_IMAGE $AC_APP_NAME uid=$(id -u) $(cat /host/writer.txt) $(ls /scratch | xargs)"'],
      editManifest: (m) => {
        const app = m.app as Record<string, unknown>;
        app.environment = [{ name: 'FROM_IMAGE', value: 'image-env' }];
        app.mountPoints = [{ name: 'hostdir', path: '/host' }, { name: 'scratch', path: '/scratch' }];
        return m;
      },
    });
    assertOk(await rkt(env, ['--insecure-options=image', 'fetch', img.path]), 'fetch');
    hostDir = join(env.work, 'hostdir');
    mkdirSync(hostDir);
    chmodSync(hostDir, 0o777);
  });

  const children: ChildProcess[] = [];

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await rkt(env, ['gc', '--grace-period=0s']);
    env.cleanup();
    await assertNoLeaks(before0, 8000);
  });

  /** Writes a manifest file (an object as JSON, a string as is). */
  const manifestFile = (m: unknown): string => {
    const file = join(env.work, `pod-${++n}.json`);
    writeFileSync(file, typeof m === 'string' ? m : JSON.stringify(m));
    return file;
  };

  /** Two apps sharing a host and an empty volume: one overrides the app, one uses the image's. */
  const twoApps = () => ({
    acKind: 'PodManifest',
    acVersion: '0.8.11',
    apps: [
      {
        name: 'writer',
        image: { name: IMG, id: img.shortId },
        app: {
          exec: ['/bin/sh', '-c', 'echo "$GREETING $(id -u):$(id -g)$FROM_IMAGE" > /host/writer.txt; touch /scratch/x; touch /rootfile 2>/dev/null || echo writer: read-only root; stat -c "%a %u" /scratch; touch /scratch/done'],
          user: 'nobody',
          group: 'nobody',
          environment: [{ name: 'GREETING', value: 'hello' }],
        },
        readOnlyRootFS: true,
        mounts: [{ volume: 'hostdir', path: '/host' }, { volume: 'scratch', path: '/scratch' }],
        annotations: [{ name: 'example.com/role', value: 'writer' }],
      },
      { name: 'reader', image: { id: img.id } },
    ],
    volumes: [
      { name: 'hostdir', kind: 'host', source: hostDir },
      { name: 'scratch', kind: 'empty', mode: '0770', uid: 65534, gid: 65534 },
    ],
    annotations: [{ name: 'example.com/pod', value: 'yes' }],
    userLabels: { team: 'rkt' },
  });

  const noPodsLeft = async () => {
    const list = assertOk(await rkt(env, ['list', '--no-legend'])).stdout;
    assert.equal(list, '', 'no pod left behind');
    for (const place of ['embryo', 'prepare', 'prepared']) assert.deepEqual(entriesIn(join(env.dir, 'pods', place)), [], `nothing in pods/${place}`);
  };

  test('run: two apps, shared host and empty volumes, app override, read-only rootfs, the image\'s app', async () => {
    rmSync(join(hostDir, 'writer.txt'), { force: true });
    const r = await rkt(env, ['run', `--pod-manifest=${manifestFile(twoApps())}`], { timeout: 60_000 });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^writer: read-only root$/m);
    assert.match(r.stdout, /^770 65534$/m, 'the empty volume has the manifest\'s mode and owner');
    // The writer's app section replaced the image's (no FROM_IMAGE); the reader ran the image's app.
    assert.match(r.stdout, /^reader: image-env reader uid=0 hello 65534:65534 done x$/m);
    assert.equal(readFileSync(join(hostDir, 'writer.txt'), 'utf8'), 'hello 65534:65534\n');
    await rkt(env, ['gc', '--grace-period=0s']);
  });

  test('prepare, cat-manifest, run-prepared', async () => {
    rmSync(join(hostDir, 'writer.txt'), { force: true });
    const p = assertOk(await rkt(env, ['prepare', '--quiet', `--pod-manifest=${manifestFile(twoApps())}`]));
    const uuid = p.stdout.trim();
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    const m = JSON.parse(assertOk(await rkt(env, ['cat-manifest', uuid])).stdout) as Written;
    assert.equal(m.acKind, 'PodManifest');
    assert.deepEqual(m.apps.map((a) => a.name), ['writer', 'reader']);
    const [writer, reader] = m.apps as [WrittenApp, WrittenApp];
    assert.equal(writer.image.id, img.id, 'the ID prefix is resolved');
    assert.equal(reader.image.name, IMG, 'the image name is filled in from the store');
    assert.equal(writer.app.user, '65534');
    assert.equal(writer.app.group, '65534');
    assert.equal(writer.readOnlyRootFS, true);
    assert.ok(writer.app.environment.some((e) => e.name === 'GREETING' && e.value === 'hello'));
    assert.ok(!writer.app.environment.some((e) => e.name === 'FROM_IMAGE'), 'the app section replaces the image\'s environment');
    assert.deepEqual(writer.annotations, [{ name: 'example.com/role', value: 'writer' }]);
    assert.deepEqual(writer.mounts, [{ volume: 'hostdir', path: '/host' }, { volume: 'scratch', path: '/scratch' }]);
    assert.deepEqual(reader.app.exec, img.manifest.app && (img.manifest.app as { exec: string[] }).exec);
    assert.ok(reader.app.environment.some((e) => e.name === 'FROM_IMAGE'));
    assert.deepEqual(reader.mounts, [{ volume: 'hostdir', path: '/host' }, { volume: 'scratch', path: '/scratch' }]);
    assert.deepEqual(m.volumes.map((v) => `${v.name}:${v.kind}`), ['hostdir:host', 'scratch:empty']);
    assert.deepEqual(m.annotations, [{ name: 'example.com/pod', value: 'yes' }]);
    assert.deepEqual(m.userLabels, { team: 'rkt' });
    const r = await rkt(env, ['run-prepared', uuid], { timeout: 60_000 });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^reader: image-env reader uid=0 hello 65534:65534 done x$/m);
    assert.match(assertOk(await rkt(env, ['status', uuid])).stdout, /^app-writer=0$/m);
    await rkt(env, ['gc', '--grace-period=0s']);
  });

  test('a pod\'s cat-manifest runs again as a pod manifest (rkt\'s workflow)', async () => {
    const p = assertOk(await rkt(env, ['prepare', '--quiet', '--volume=hostdir,kind=empty', '--volume=scratch,kind=empty', IMG, '--name=again', '--exec=/bin/sh', '--', '-c', 'echo again $AC_APP_NAME $FROM_IMAGE']));
    const uuid = p.stdout.trim();
    const file = manifestFile(assertOk(await rkt(env, ['cat-manifest', uuid])).stdout);
    assertOk(await rkt(env, ['rm', uuid]));
    const r = await rkt(env, ['run', '--net=none', `--pod-manifest=${file}`], { timeout: 60_000 });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^again again image-env$/m);
    await rkt(env, ['gc', '--grace-period=0s']);
  });

  test('exit code and --interactive rules follow the manifest\'s apps', async () => {
    const one = twoApps();
    one.apps = [{ name: 'only', image: { id: img.id }, app: { exec: ['sh', '-c', 'exit 4'], user: '0', group: '0' } }] as typeof one.apps;
    one.volumes = [];
    const r = await rkt(env, ['run', '--net=none', '--no-overlay', `--pod-manifest=${manifestFile(one)}`], { timeout: 60_000 });
    assert.equal(r.code, 4, describeRun(r));
    assertRktError(await rkt(env, ['run', '--interactive', `--pod-manifest=${manifestFile(twoApps())}`]), /exactly one app/);
    await rkt(env, ['gc', '--grace-period=0s']);
  });

  test('the manifest\'s ports are forwarded, by run and by run-prepared', async () => {
    const port = await freePort();
    const web = {
      acKind: 'PodManifest',
      acVersion: '0.8.11',
      apps: [{
        name: 'web',
        image: { id: img.id },
        app: {
          exec: ['/bin/sh', '-c', 'mkdir -p /www && echo "web on $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'],
          user: '0',
          group: '0',
          ports: [{ name: 'http', protocol: 'tcp', port: 80 }],
        },
      }],
      ports: [{ name: 'http', hostPort: port, hostIP: '' }],
    };
    const file = manifestFile(web);
    const uuidFile = join(env.work, 'uuid-web');
    for (const how of ['run', 'run-prepared']) {
      rmSync(uuidFile, { force: true });
      let args = ['run', `--uuid-file-save=${uuidFile}`, `--pod-manifest=${file}`];
      if (how === 'run-prepared') {
        const uuid = assertOk(await rkt(env, ['prepare', '--quiet', `--pod-manifest=${file}`])).stdout.trim();
        writeFileSync(uuidFile, uuid);
        args = ['run-prepared', uuid];
      }
      const child = spawn(RKT_BIN, [...env.globalArgs, ...args], { stdio: 'ignore' });
      children.push(child);
      const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      let uuid = '';
      for (let i = 0; i < 150 && !uuid; i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (existsSync(uuidFile)) uuid = readFileSync(uuidFile, 'utf8').trim();
      }
      assert.ok(uuid, `${how}: pod started`);
      try {
        assertOk(await rkt(env, ['status', '--wait-ready=20s', uuid]));
        assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).trim(), `web on rkt-${uuid}`, how);
      } finally {
        await rkt(env, ['stop', uuid]);
        await exited;
      }
    }
    await rkt(env, ['gc', '--grace-period=0s']);
  });

  test('bad input: one error line, no pod left behind', async () => {
    await rkt(env, ['gc', '--grace-period=0s']);
    const base = twoApps();
    const edit = (f: (m: ReturnType<typeof twoApps>) => unknown) => {
      const m = twoApps();
      return manifestFile(f(m) ?? m);
    };
    const cases: [string[], RegExp][] = [
      [[`--pod-manifest=${join(env.work, 'missing.json')}`], /cannot read pod manifest .*missing\.json: no such file/],
      [[`--pod-manifest=${env.work}`], /cannot read pod manifest .*: it is a directory/],
      [[`--pod-manifest=${manifestFile('{"acKind": "PodManifest",')}`], /invalid pod manifest .*: not valid JSON/],
      [[`--pod-manifest=${manifestFile({ ...base, acKind: 'ImageManifest' })}`], /acKind is "ImageManifest", not "PodManifest"/],
      [[`--pod-manifest=${manifestFile({ ...base, apps: [] })}`], /it has no apps/],
      [[`--pod-manifest=${edit((m) => { (m.apps[1] as { name: string }).name = 'writer'; })}`], /duplicate app name "writer"/],
      [[`--pod-manifest=${edit((m) => { (m.apps[1] as { name: string }).name = 'Bad_Name'; })}`], /field "apps\[1\]\.name" is not a valid AC Name/],
      [[`--pod-manifest=${edit((m) => { (m.apps[1] as { image: unknown }).image = { name: IMG }; })}`], /field "apps\[1\]\.image\.id" is missing/],
      [[`--pod-manifest=${edit((m) => { (m.apps[1] as { image: unknown }).image = { id: `sha512-${'0'.repeat(64)}` }; })}`], /app "reader": image sha512-0+ is not in the store/],
      [[`--pod-manifest=${edit((m) => { m.apps[0]!.mounts![0]!.volume = 'nope'; })}`], /app "writer": mount \/host names volume "nope", which "volumes" does not declare/],
      [[`--pod-manifest=${edit((m) => { delete (m.volumes[0] as { source?: string }).source; })}`], /volume "hostdir": kind "host" needs a "source"/],
      [[`--pod-manifest=${edit((m) => { m.apps[0]!.app!.user = 'nosuchuser'; })}`], /unknown user "nosuchuser"/],
      [[`--pod-manifest=${edit((m) => { m.apps[0]!.app!.exec = ['/no/such/binary']; })}`], /app "writer": executable "\/no\/such\/binary" not found/],
      [[`--pod-manifest=${edit((m) => { delete (m.apps[0]!.app as { group?: string }).group; })}`], /field "apps\[0\]\.app\.group" is missing/],
      [[`--pod-manifest=${manifestFile(twoApps())}`, IMG], /image arguments cannot be used with --pod-manifest/],
      [['--volume=x,kind=empty', '--set-env=A=B', `--pod-manifest=${manifestFile(twoApps())}`], /--volume, --set-env cannot be used with --pod-manifest/],
      [['--exec=/bin/sh', `--pod-manifest=${manifestFile(twoApps())}`], /--exec must follow an image/],
    ];
    for (const cmd of ['run', 'prepare']) {
      for (const [args, re] of cases) assertRktError(await rkt(env, [cmd, '--net=none', ...args].filter((a) => cmd === 'run' || a !== '--net=none')), re);
    }
    // Ports must name a port an app declares (checked once the apps are known).
    const ports = manifestFile({ ...base, ports: [{ name: 'http', hostPort: 18080 }] });
    assertRktError(await rkt(env, ['prepare', `--pod-manifest=${ports}`]), /port name "http" is not declared by any app/);
    assertRktError(await rkt(env, ['run', '--net=host', `--pod-manifest=${ports}`]), /the pod manifest forwards ports \(http\): that needs a contained network/);
    await noPodsLeft();
  });
});
