// Pods end to end, as a user types them: real runc, real overlayfs, the
// pod monitor, against a throwaway --dir. Each test cleans up with gc and
// the file checks that nothing leaked on the host.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildAci, fixturesAvailable, type Aci } from '../helpers/aci.ts';
import { assertNoLeaks, snapshot, type Snapshot } from '../helpers/leaks.ts';
import { RKT_BIN, assertOk, savedUuid, assertRktError, describeRun, makeEnv, rkt, type RktEnv } from '../helpers/rkt.ts';

const isRoot = process.getuid?.() === 0;
const fx = fixturesAvailable();
const hasRunc = spawnSync('runc', ['--version']).status === 0;
const skip = !isRoot ? 'needs root' : !fx.ok ? `missing fixtures: ${fx.missing.join(', ')}` : !hasRunc ? 'runc not installed' : false;
if (skip) console.log(`# skipping pod tests: ${skip}`);

const IMG = 'example.com/rkt-test/busybox';

describe('pods', { skip, concurrency: false }, () => {
  let env: RktEnv;
  let img: Aci;
  let before0: Snapshot;

  before(async () => {
    before0 = snapshot();
    env = makeEnv('rkt-pod-');
    img = await buildAci(env.work, {
      name: IMG,
      exec: ['/bin/sh', '-c', 'echo hello from $AC_APP_NAME'],
      files: { 'etc/hosts': '' },
      editManifest: (m) => {
        const app = m.app as Record<string, unknown>;
        app.environment = [{ name: 'FROM_IMAGE', value: 'image' }, { name: 'OVERRIDE', value: 'image' }];
        app.mountPoints = [{ name: 'data', path: '/data' }];
        return m;
      },
    });
    assertOk(await rkt(env, ['--insecure-options=image', 'fetch', img.path]), 'fetch');
  });

  after(async () => {
    await rkt(env, ['gc', '--grace-period=0s']);
    env.cleanup();
    await assertNoLeaks(before0, 8000);
  });

  const run = (args: string[], opts: Parameters<typeof rkt>[2] = {}) =>
    rkt(env, ['run', '--volume=data,kind=empty', ...args], { timeout: 60_000, ...opts });

  test('runs an app and passes its output and exit code', async () => {
    const r = await run([IMG]);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /hello from busybox/);
    const r5 = await run([IMG, '--exec=/bin/sh', '--', '-c', 'exit 5']);
    assert.equal(r5.code, 5, describeRun(r5));
  });

  test('the failing app decides the pod exit code and stops the others', async () => {
    const t0 = Date.now();
    const r = await rkt(env, ['run', '--volume=data,kind=empty', IMG, '--name=ok', '--exec=/bin/true', '---', IMG, '--name=bad', '--exec=/bin/sh', '--', '-c', 'sleep 0.3; exit 6', '---', IMG, '--name=sleeper', '--exec=/bin/sleep', '--', '60'], { timeout: 60_000 });
    assert.equal(r.code, 6, describeRun(r));
    assert.ok(Date.now() - t0 < 30_000, 'the sleeper was stopped');
  });

  test('environment precedence', async () => {
    const envFile = join(env.work, 'env');
    writeFileSync(envFile, '# comment\nFROM_FILE=file\nOVERRIDE=file\n');
    const r = await run(['--set-env-file', envFile, '--set-env=SET=set', '--set-env=OVERRIDE=set', IMG, '--environment=OVERRIDE=app', '--exec=/bin/sh', '--', '-c', 'echo "$FROM_IMAGE $FROM_FILE $SET $OVERRIDE $PATH $AC_APP_NAME"']);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^image file set app \/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin busybox$/m);
  });

  test('users and groups by id and by name', async () => {
    const r = await run([IMG, '--user=nobody', '--group=nobody', '--exec=/bin/sh', '--', '-c', 'id -u; id -g']);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^65534\n65534$/m);
    const r2 = await run([IMG, '--user=1234', '--group=4321', '--supplementary-gids=7,8', '--exec=/bin/sh', '--', '-c', 'id']);
    assert.match(r2.stdout, /uid=1234 gid=4321 groups=4321|uid=1234 gid=4321.*7.*8/, describeRun(r2));
    const bad = await run([IMG, '--user=nosuchuser']);
    assertRktError(bad, /unknown user "nosuchuser"/);
  });

  test('host volumes (read-only enforced) and empty volumes', async () => {
    const host = join(env.work, 'hostvol');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'in.txt'), 'from host\n');
    const rw = await rkt(env, ['run', `--volume=data,kind=host,source=${host}`, IMG, '--exec=/bin/sh', '--', '-c', 'cat /data/in.txt; echo written > /data/out.txt'], { timeout: 60_000 });
    assert.equal(rw.code, 0, describeRun(rw));
    assert.match(rw.stdout, /from host/);
    assert.equal(readFileSync(join(host, 'out.txt'), 'utf8'), 'written\n');
    const ro = await rkt(env, ['run', `--volume=data,kind=host,source=${host},readOnly=true`, IMG, '--exec=/bin/sh', '--', '-c', 'echo x > /data/ro.txt'], { timeout: 60_000 });
    assert.notEqual(ro.code, 0, describeRun(ro));
    assert.ok(!existsSync(join(host, 'ro.txt')));
    const empty = await run([IMG, '--exec=/bin/sh', '--', '-c', 'touch /data/x && ls /data']);
    assert.equal(empty.code, 0, describeRun(empty));
    const noMount = await rkt(env, ['run', '--volume=data,kind=empty', '--volume=spare,kind=empty', IMG], { timeout: 60_000 });
    assertRktError(noMount, /volume "spare" has no mount point/);
  });

  test('two apps share the PID namespace and localhost', async () => {
    const r = await rkt(env, [
      'run', '--volume=data,kind=empty', '--exit-policy=fail-fast',
      IMG, '--name=server', '--exec=/bin/sh', '--', '-c', 'mkdir -p /www && echo pong > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www', '---',
      IMG, '--name=client', '--exec=/bin/sh', '--', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:8080/ && break; sleep 0.2; done; ps | grep -q "[h]ttpd" && echo saw-httpd; exit 7',
    ], { timeout: 60_000 });
    assert.equal(r.code, 7, describeRun(r));
    assert.match(r.stdout, /pong/);
    assert.match(r.stdout, /saw-httpd/);
  });

  test('hostname, /etc/hosts and read-only rootfs', async () => {
    const r = await run(['--hostname=podhost', IMG, '--readonly-rootfs', '--exec=/bin/sh', '--', '-c', 'hostname; grep -c podhost /etc/hosts; touch /x 2>/dev/null || echo ro']);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^podhost\n1\nro$/m);
  });

  test('prepare, run-prepared, list, status, cat-manifest, logs', async () => {
    const p = await rkt(env, ['prepare', '--quiet', '--volume=data,kind=empty', IMG, '--exec=/bin/sh', '--', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(p.code, 0, describeRun(p));
    const uuid = p.stdout.trim();
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    assert.match((await rkt(env, ['status', uuid])).stdout, /^state=prepared$/m);
    const m = JSON.parse(assertOk(await rkt(env, ['cat-manifest', uuid])).stdout) as { acKind: string; apps: { name: string }[] };
    assert.equal(m.acKind, 'PodManifest');
    assert.equal(m.apps[0]?.name, 'busybox');
    const r = await rkt(env, ['run-prepared', uuid.slice(0, 8)], { timeout: 60_000 });
    assert.equal(r.code, 3, describeRun(r));
    const st = assertOk(await rkt(env, ['status', uuid])).stdout;
    assert.match(st, /^state=exited$/m);
    assert.match(st, /^exited=true$/m);
    assert.match(st, /^app-busybox=3$/m);
    const list = assertOk(await rkt(env, ['list', '--no-legend'])).stdout;
    assert.match(list, new RegExp(`^${uuid.slice(0, 8)}\\tbusybox\\t+${IMG.replace(/\./g, '\\.')}:1\\.0\\.0\\t+exited`, 'm'));
    const json = JSON.parse(assertOk(await rkt(env, ['list', '--format=json'])).stdout) as { name: string; state: string; apps: { exit_code?: number }[] }[];
    assert.equal(json.find((x) => x.name === uuid)?.apps[0]?.exit_code, 3);
    const logs = assertOk(await rkt(env, ['logs', uuid]));
    assert.equal(logs.stdout, 'out\n');
    assert.equal(logs.stderr, 'err\n');
    const again = await rkt(env, ['run-prepared', uuid]);
    assertRktError(again, /not prepared/);
  });

  test('stop, stop --force, enter, rm of a running pod', async () => {
    for (const force of [false, true]) {
      const uuidFile = join(env.work, `uuid-${force}`);
      const child = spawn(RKT_BIN, [...env.globalArgs, 'run', '--volume=data,kind=empty', `--uuid-file-save=${uuidFile}`, IMG, '--exec=/bin/sleep', '--', '300'], { stdio: 'ignore' });
      const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
      try {
        const uuid = await savedUuid(uuidFile);
        assert.ok(uuid, 'uuid saved');
        assertOk(await rkt(env, ['status', '--wait-ready=10s', uuid]));
        if (!force) {
          const e = await rkt(env, ['enter', uuid, '/bin/sh', '-c', 'echo entered; hostname']);
          assert.equal(e.code, 0, describeRun(e));
          assert.match(e.stdout, new RegExp(`entered\nrkt-${uuid}`));
          assertRktError(await rkt(env, ['rm', uuid]), { match: /running/, multi: true });
        }
        const s = await rkt(env, ['stop', ...(force ? ['--force'] : []), `--uuid-file=${uuidFile}`]);
        assert.equal(s.code, 0, describeRun(s));
        assert.equal(s.stdout.trim(), `"${uuid}"`);
        const code = await exited;
        assert.equal(code, force ? 137 : 143);
        assertOk(await rkt(env, ['rm', uuid]));
        assertRktError(await rkt(env, ['enter', uuid]), /no pod found/);
      } finally {
        child.kill('SIGKILL');
      }
    }
  });

  test('a SIGKILLed monitor leaves a pod that list shows exited and gc removes completely', async () => {
    const uuidFile = join(env.work, 'uuid-kill');
    const child = spawn(RKT_BIN, [...env.globalArgs, 'run', '--volume=data,kind=empty', `--uuid-file-save=${uuidFile}`, IMG, '--exec=/bin/sleep', '--', '300'], { stdio: 'ignore' });
    const uuid = await savedUuid(uuidFile);
    assertOk(await rkt(env, ['status', '--wait-ready=10s', uuid]));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const st = assertOk(await rkt(env, ['status', uuid])).stdout;
    assert.match(st, /^state=exited$/m);
    const gc = assertOk(await rkt(env, ['gc', '--grace-period=0s']));
    assert.match(gc.stdout, new RegExp(`Garbage collecting pod "${uuid}"`));
    assertRktError(await rkt(env, ['status', uuid]), /no pod found/);
    for (const rt of ['runc', 'crun']) assert.ok(!(spawnSync(rt, ['list'], { encoding: 'utf8' }).stdout ?? '').includes(uuid), `${rt} container removed`);
  });

  test('bad input: unknown image, missing exec, conflicting flags, unknown uuid', async () => {
    assertRktError(await rkt(env, ['run', '--pull-policy=never', 'example.com/nope']), /"example\.com\/nope" is not in the store/);
    assertRktError(await run([IMG, '--exec=/no/such/binary']), /not found in the image/);
    assertRktError(await run(['--interactive', IMG, '---', IMG, '--name=two']), /exactly one app/);
    assertRktError(await rkt(env, ['run', '--net=host,none', IMG]), /cannot be combined/);
    assertRktError(await rkt(env, ['status', 'ffffffff']), /no pod found/);
    assertRktError(await rkt(env, ['stop', 'ffffffff']), { match: /no pod found/, multi: true });
    assertRktError(await run([IMG, '--mount=volume=nosuch,target=/x']), /no --volume defines/);
    const pods = assertOk(await rkt(env, ['list', '--no-legend', '--format=json'])).stdout;
    assert.ok(!/preparing|embryo/.test(pods), 'no half-made pods left');
  });

  test('twenty parallel runs with gc running alongside', async () => {
    const runs = Array.from({ length: 20 }, (_, i) => run([IMG, '--exec=/bin/sh', '--', '-c', `exit ${i % 3}`]));
    const gcs = (async () => {
      for (let i = 0; i < 5; i++) {
        await rkt(env, ['gc', '--grace-period=0s']);
      }
    })();
    const results = await Promise.all(runs);
    await gcs;
    results.forEach((r, i) => assert.equal(r.code, i % 3, describeRun(r)));
    assertOk(await rkt(env, ['gc', '--grace-period=0s']));
    assert.equal(assertOk(await rkt(env, ['list', '--no-legend'])).stdout, '');
  });

  test('interactive: a terminal for the app', async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) return t.skip('script(1) not installed');
    const cmd = `${RKT_BIN} ${env.globalArgs.join(' ')} run --interactive --volume=data,kind=empty ${IMG} --exec=/bin/sh`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { input: 'tty >/dev/null && echo is-a-tty\nexit 4\n', encoding: 'utf8', timeout: 60_000 });
    assert.match(r.stdout, /is-a-tty/, r.stdout + r.stderr);
    assert.equal(r.status, 4);
  });

  test('the fly flavor runs chrooted in the host namespaces', async () => {
    const r = await rkt(env, ['run', '--stage1-name=coreos.com/rkt/stage1-fly', '--volume=data,kind=empty', IMG, '--exec=/bin/sh', '--', '-c', 'hostname; cat /proc/1/comm']);
    assert.equal(r.code, 0, describeRun(r));
    const [hostname, init] = r.stdout.split('\n');
    assert.equal(hostname, spawnSync('hostname', { encoding: 'utf8' }).stdout.trim());
    assert.equal(init, readFileSync('/proc/1/comm', 'utf8').trim(), 'PID 1 is the host\'s');
    const own = await run([IMG, '--exec=/bin/sh', '--', '-c', 'cat /proc/1/comm']);
    assert.notEqual(own.stdout.trim(), readFileSync('/proc/1/comm', 'utf8').trim(), 'the default flavor has its own PID 1');
  });

  test('both OCI runtimes: --oci-runtime=runc and crun run pods, enter finds the pod in its own runtime', async () => {
    for (const rt of ['runc', 'crun']) {
      if (spawnSync(rt, ['--version']).status !== 0) continue;
      const r = await run([`--oci-runtime=${rt}`, IMG, '---', IMG, '--name=two', '--exec=/bin/sh', '--', '-c', 'exit 3']);
      assert.equal(r.code, 3, describeRun(r));
      assert.match(r.stdout, /hello from busybox/);
      const uuidFile = join(env.work, `uuid-${rt}`);
      const child = spawn(RKT_BIN, [...env.globalArgs, 'run', '--volume=data,kind=empty', `--oci-runtime=${rt}`, `--uuid-file-save=${uuidFile}`, IMG, '--exec=/bin/sleep', '--', '300'], { stdio: 'ignore' });
      const exited = new Promise((res) => child.on('close', res));
      try {
        const uuid = await savedUuid(uuidFile);
        assertOk(await rkt(env, ['status', '--wait-ready=10s', uuid]));
        assert.ok(spawnSync(rt, ['list'], { encoding: 'utf8' }).stdout.includes(uuid), `the pod is in ${rt}'s list`);
        assert.equal(assertOk(await rkt(env, ['enter', uuid, '/bin/echo', 'inside'])).stdout.trim(), 'inside');
        assertOk(await rkt(env, ['stop', uuid]));
        await exited;
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });

  test('without the launcher (node dist/rkt.js): run and its exit code, through process.execve', () => {
    const js = join(RKT_BIN, '..', '..', 'dist', 'rkt.js');
    const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', js, ...env.globalArgs, 'run', '--volume=data,kind=empty', IMG, '---', IMG, '--name=two', '--exec=/bin/sh', '--', '-c', 'exit 7'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 7, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /hello from busybox/);
  });

  test('image rm while a pod runs: the pod keeps its tree until image gc finds it unused', async () => {
    const uuidFile = join(env.work, 'uuid-rm');
    const child = spawn(RKT_BIN, [...env.globalArgs, 'run', '--volume=data,kind=empty', `--uuid-file-save=${uuidFile}`, IMG, '--exec=/bin/sleep', '--', '300'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('close', r));
    try {
      const uuid = await savedUuid(uuidFile);
      assertOk(await rkt(env, ['status', '--wait-ready=10s', uuid]));
      const plan = JSON.parse(readFileSync(join(env.dir, 'pods', 'run', uuid, 'plan.json'), 'utf8')) as { apps: { treeRootfs: string }[] };
      const tree = plan.apps[0]?.treeRootfs as string;
      assert.ok(existsSync(join(tree, 'bin')), 'the tree is there');
      assert.match(assertOk(await rkt(env, ['image', 'rm', IMG])).stdout, /successfully removed/);
      assert.ok(existsSync(join(tree, 'bin')), 'image rm keeps a tree a pod mounts');
      assertOk(await rkt(env, ['image', 'gc', '--grace-period=0s']));
      assert.ok(existsSync(join(tree, 'bin')), 'image gc keeps it while the pod exists');
      assertOk(await rkt(env, ['stop', uuid]));
      await exited;
      assertOk(await rkt(env, ['gc', '--grace-period=0s']));
      assertOk(await rkt(env, ['image', 'gc', '--grace-period=0s']));
      assert.ok(!existsSync(tree), 'image gc removes it once no pod uses it');
    } finally {
      child.kill('SIGKILL');
      await exited;
      assertOk(await rkt(env, ['--insecure-options=image', 'fetch', img.path]), 'fetch again');
    }
  });
});
