// stage1/monitor.c on its own: compiled here with cc, driven by a
// hand-written monitor.conf, running busybox apps through the real runc.
// Needs root (runc, mount), runc, cc and Debian's static /bin/busybox.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { assertNoLeaks, snapshot, track, type Snapshot } from '../helpers/leaks.ts';
import { REPO_ROOT, removeTree } from '../helpers/rkt.ts';

const BUSYBOX = '/bin/busybox';
const SOURCE = join(REPO_ROOT, 'stage1', 'monitor.c');
const LINE_MAX = 16 * 1024;
const CRI_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([FP]) (.*)$/;

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const RUNC = which('runc');
const skipReason = ((): string | false => {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!RUNC) return 'runc is not installed';
  if (!which('cc')) return 'cc is not installed';
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing`;
  return false;
})();

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 50 ms; false if it did not hold within `ms`. */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(50);
  }
}

function runcIds(): string[] {
  const r = spawnSync(RUNC ?? 'runc', ['list', '-q'], { encoding: 'utf8', timeout: 10_000 });
  return r.stdout.split('\n').filter((l) => l !== '');
}

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))) === path);
}

function fsTypeOf(path: string): string | undefined {
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f[4] === path) return f[f.indexOf('-') + 1];
  }
  return undefined;
}

function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no VmRSS for ${pid}`);
  return Number(m[1]);
}

function ppidOf(pid: number): number {
  const m = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m);
  return Number(m[1]);
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

interface Running {
  pid: number;
  done: Promise<Result>;
  kill(sig: NodeJS.Signals): void;
}

describe('rkt-monitor', { skip: skipReason }, () => {
  let base: string;
  let monitor: string;
  let rootfs: string;
  let leaks: Snapshot;
  // Per test: the pod dir, the container ids it used, whether the monitor ran.
  let pods: { dir: string; ids: string[]; ran: boolean }[] = [];

  before(() => {
    leaks = snapshot();
    base = mkdtempSync(join(tmpdir(), 'rkt-monitor-'));
    track(base);
    monitor = join(base, 'rkt-monitor');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-o', monitor, SOURCE], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed:\n${cc.stderr}`);
    assert.equal(cc.stderr, '', `cc warnings:\n${cc.stderr}`);

    // One read-only busybox rootfs shared by the apps (and the overlays' lower dir).
    rootfs = join(base, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
    const list = spawnSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' });
    assert.equal(list.status, 0);
    for (const applet of list.stdout.split('\n')) {
      if (applet === '' || applet === 'bin/busybox') continue;
      mkdirSync(join(rootfs, dirname(applet)), { recursive: true });
      if (!existsSync(join(rootfs, applet))) symlinkSync('/bin/busybox', join(rootfs, applet));
    }
    for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp', 'root']) mkdirSync(join(rootfs, d), { recursive: true });
    writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\n');
  });

  afterEach(async () => {
    for (const p of pods) {
      // The detached cleanup may still be running runc delete: let it finish first.
      if (p.ran) await waitFor(() => existsSync(join(p.dir, 'cleaned')), 5000);
      for (const id of p.ids) spawnSync(RUNC ?? 'runc', ['delete', '-f', id], { stdio: 'ignore', timeout: 30_000 });
      removeTree(p.dir);
    }
    pods = [];
  });

  after(async () => {
    if (base) removeTree(base);
    await assertNoLeaks(leaks);
  });

  interface AppOpts {
    readonly?: boolean;
    root?: string;
  }

  /** A pod dir under the temp dir; apps are added with `app`. */
  function newPod(): {
    dir: string;
    conf: string[];
    app(name: string, args: string[], o?: AppOpts): { id: string; bundle: string };
    /** `cleans`: whether a run is expected to end with the detached cleanup. */
    write(extra?: string[], cleans?: boolean): void;
    file(...p: string[]): string;
    read(...p: string[]): string;
  } {
    const dir = mkdtempSync(join(base, 'pod-'));
    const rec = { dir, ids: [] as string[], ran: false };
    pods.push(rec);
    const conf = [`uuid\t${randomBytes(8).toString('hex')}`, `runtime\t${RUNC}`];
    const apps: string[] = [];
    return {
      dir,
      conf,
      app(name, args, o = {}) {
        const id = `rkt-test-${randomBytes(6).toString('hex')}-${name}`;
        rec.ids.push(id);
        const bundle = join(dir, 'apps', name);
        mkdirSync(bundle, { recursive: true });
        const s = spawnSync(RUNC ?? 'runc', ['spec', '--bundle', bundle], { encoding: 'utf8' });
        assert.equal(s.status, 0, s.stderr);
        const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
        spec.process.args = args;
        spec.process.terminal = false;
        spec.root = { path: o.root ?? rootfs, readonly: o.readonly ?? true };
        writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
        apps.push(`app\t${name}\t${id}\t${bundle}`);
        return { id, bundle };
      },
      write(extra = [], cleans = true) {
        writeFileSync(join(dir, 'monitor.conf'), `${[...conf, ...extra, ...apps].join('\n')}\n`);
        rec.ran = cleans;
      },
      file: (...p) => join(dir, ...p),
      read: (...p) => readFileSync(join(dir, ...p), 'utf8'),
    };
  }

  /** Starts the monitor on `dir`; it is SIGKILLed if it outlives `timeoutMs`. */
  function start(dir: string, opts: { timeoutMs?: number; input?: string; closeStdout?: boolean } = {}): Running {
    const t0 = Date.now();
    const child = spawn(monitor, [dir], { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    assert.ok(child.stdout && child.stderr);
    if (opts.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => {});
      child.stdin?.end(opts.input);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    const done = new Promise<Result>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - t0 });
      });
    });
    assert.ok(child.pid);
    return { pid: child.pid, done, kill: (sig) => child.kill(sig) };
  }

  async function run(dir: string, opts: { timeoutMs?: number; input?: string; closeStdout?: boolean } = {}): Promise<Result> {
    return start(dir, opts).done;
  }

  const show = (r: Result): string => `\nexit ${r.code} ${r.signal ?? ''} after ${r.ms} ms\n--- stdout ---\n${r.stdout.slice(0, 2000)}\n--- stderr ---\n${r.stderr.slice(0, 4000)}`;

  async function cleaned(dir: string): Promise<void> {
    assert.ok(await waitFor(() => existsSync(join(dir, 'cleaned')), 5000), 'the cleanup did not write "cleaned" within 5 s');
  }

  function logRecords(path: string): { ts: string; stream: string; tag: string; text: string }[] {
    const text = readFileSync(path, 'utf8');
    assert.ok(text.endsWith('\n'), 'the log does not end with a newline');
    return text
      .slice(0, -1)
      .split('\n')
      .map((l) => {
        const m = CRI_LINE.exec(l);
        assert.ok(m, `not a CRI log line: ${JSON.stringify(l.slice(0, 200))}`);
        return { ts: m[1] ?? '', stream: m[2] ?? '', tag: m[3] ?? '', text: m[4] ?? '' };
      });
  }

  test('an app exiting 0: exit 0, pid/started/exit files, ready, cleanup', async () => {
    const pod = newPod();
    const { id } = pod.app('a', ['/bin/true']);
    pod.write();
    const t0 = BigInt(Date.now()) * 1_000_000n;
    const r = await run(pod.dir);
    assert.equal(r.code, 0, show(r));
    assert.match(pod.read('apps', 'a', 'pid'), /^\d+$/);
    const started = BigInt(pod.read('apps', 'a', 'started').trim());
    assert.ok(started >= t0 && started <= BigInt(Date.now()) * 1_000_000n, `started ${started} not within the run`);
    assert.equal(pod.read('apps', 'a', 'exit').trim(), '0');
    assert.equal(pod.read('supervisor-status').trim(), 'ready');
    await cleaned(pod.dir);
    assert.ok(!runcIds().includes(id), `${id} is still known to runc`);
  });

  test("an app's exit code is the pod's", async () => {
    const pod = newPod();
    pod.app('a', ['/bin/sh', '-c', 'exit 5']);
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 5, show(r));
    assert.equal(pod.read('apps', 'a', 'exit').trim(), '5');
  });

  test('an app reaped before its runc returned is matched once the pid is known', async () => {
    const pod = newPod();
    // runc returns, the app is re-parented to the monitor and exits, and only
    // then does the "runtime" exit: the monitor reaps the app's pid first.
    const wrapper = pod.file('slow-runc');
    writeFileSync(wrapper, `#!/bin/sh\n${RUNC} "$@"\nrc=$?\nsleep 0.5\nexit $rc\n`, { mode: 0o755 });
    pod.conf[1] = `runtime\t${wrapper}`;
    pod.app('a', ['/bin/sh', '-c', 'exit 6']);
    pod.write(['debug\t1']);
    const r = await run(pod.dir);
    assert.equal(r.code, 6, show(r));
    assert.equal(pod.read('apps', 'a', 'exit').trim(), '6');
    const pid = pod.read('apps', 'a', 'pid');
    assert.ok(r.stderr.indexOf(`rkt-monitor: reaped pid ${pid}`) < r.stderr.indexOf('rkt-monitor: app a started'), show(r));
  });

  test('fail-fast: a failing app stops the others (SIGTERM) and its code wins', async () => {
    const pod = newPod();
    // sh as PID 1 only gets SIGTERM if it has a handler: the trap is one.
    pod.app('sleeper', ['/bin/sh', '-c', 'trap "exit 143" TERM; sleep 100 & wait']);
    pod.app('failer', ['/bin/sh', '-c', 'sleep 0.3; exit 3']);
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 3, show(r));
    assert.ok(r.ms < 5000, `took ${r.ms} ms`);
    assert.equal(pod.read('apps', 'failer', 'exit').trim(), '3');
    assert.equal(pod.read('apps', 'sleeper', 'exit').trim(), '143');
  });

  test('fail-fast: an app ignoring SIGTERM is killed after stop-timeout', async () => {
    const pod = newPod();
    pod.conf.push('stop-timeout\t1');
    pod.app('sleeper', ['/bin/sleep', '100']); // PID 1 without handler: SIGTERM is dropped
    pod.app('failer', ['/bin/sh', '-c', 'sleep 0.3; exit 3']);
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 3, show(r));
    assert.ok(r.ms >= 1000 && r.ms < 6000, `took ${r.ms} ms`);
    assert.equal(pod.read('apps', 'sleeper', 'exit').trim(), '137');
  });

  test('exit-policy all: waits for every app', async () => {
    const pod = newPod();
    pod.conf.push('exit-policy\tall');
    pod.app('failer', ['/bin/sh', '-c', 'exit 3']);
    pod.app('slow', ['/bin/sh', '-c', 'sleep 1.5; echo slow done']);
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 3, show(r));
    assert.ok(r.ms >= 1500, `took only ${r.ms} ms`);
    assert.equal(pod.read('apps', 'slow', 'exit').trim(), '0');
    assert.equal(r.stdout, 'slow done\n');
  });

  test('output is forwarded unchanged and logged in CRI format', async () => {
    const pod = newPod();
    pod.app('a', ['/bin/sh', '-c', 'echo out1; echo err1 >&2; echo out2; printf "partial" >&2']);
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'out1\nout2\n');
    assert.equal(r.stderr, 'err1\npartial');
    const recs = logRecords(pod.file('logs', 'a.log'));
    const got = (s: string) => recs.filter((x) => x.stream === s).map((x) => `${x.tag} ${x.text}`);
    assert.deepEqual(got('stdout'), ['F out1', 'F out2']);
    assert.deepEqual(got('stderr'), ['F err1', 'F partial']);
    for (const x of recs) assert.ok(Math.abs(Date.parse(x.ts) - Date.now()) < 60_000, x.ts);
  });

  test('long lines become P records ended by an F record', async () => {
    const pod = newPod();
    const script = [
      `head -c 40000 /dev/zero | tr '\\0' x; echo`,
      `head -c ${LINE_MAX} /dev/zero | tr '\\0' y; echo`,
      `head -c ${LINE_MAX + 1} /dev/zero | tr '\\0' z`,
    ].join('; ');
    pod.app('a', ['/bin/sh', '-c', script]);
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, `${'x'.repeat(40000)}\n${'y'.repeat(LINE_MAX)}\n${'z'.repeat(LINE_MAX + 1)}`);
    const recs = logRecords(pod.file('logs', 'a.log')).map((x) => `${x.stream} ${x.tag} ${x.text[0]}${x.text.length}`);
    assert.deepEqual(recs, [
      `stdout P x${LINE_MAX}`,
      `stdout P x${LINE_MAX}`,
      `stdout F x${40000 - 2 * LINE_MAX}`,
      `stdout F y${LINE_MAX}`, // exactly the buffer size: still one record
      `stdout P z${LINE_MAX}`,
      'stdout F z1', // the last, unterminated, line is flushed at EOF
    ]);
  });

  test('SIGTERM to the monitor stops the apps; exit 143; small RSS; apps are its children', async (t) => {
    const pod = newPod();
    pod.app('a', ['/bin/sh', '-c', 'trap "exit 143" TERM; sleep 100 & wait']);
    pod.write();
    const m = start(pod.dir);
    assert.ok(await waitFor(() => existsSync(pod.file('supervisor-status')), 10_000), 'never ready');
    const appPid = Number(pod.read('apps', 'a', 'pid'));
    assert.equal(ppidOf(appPid), m.pid, 'the app is not re-parented to the monitor');
    const rss = vmRssKb(m.pid);
    t.diagnostic(`monitor VmRSS with one sleeping app: ${rss} kB`);
    assert.ok(rss < 20 * 1024, `VmRSS ${rss} kB`);
    const t0 = Date.now();
    m.kill('SIGTERM');
    const r = await m.done;
    assert.equal(r.code, 143, show(r));
    assert.ok(Date.now() - t0 < 5000, `stopping took ${Date.now() - t0} ms`);
    assert.equal(pod.read('apps', 'a', 'exit').trim(), '143');
    assert.ok(!existsSync(`/proc/${appPid}`), 'the app still exists');
    await cleaned(pod.dir);
  });

  test('SIGTERM while an app is being started: it is stopped once started, later apps never start', async () => {
    const pod = newPod();
    const wrapper = pod.file('slow-runc');
    writeFileSync(wrapper, `#!/bin/sh\n${RUNC} "$@"\nrc=$?\nsleep 1\nexit $rc\n`, { mode: 0o755 });
    pod.conf[1] = `runtime\t${wrapper}`;
    pod.app('a', ['/bin/sh', '-c', 'trap "exit 143" TERM; sleep 100 & wait']);
    pod.app('b', ['/bin/sleep', '100']);
    pod.write();
    const m = start(pod.dir);
    assert.ok(await waitFor(() => existsSync(pod.file('apps', 'a', 'pid')), 5000), 'runc never wrote the pid file');
    m.kill('SIGTERM');
    const r = await m.done;
    assert.equal(r.code, 143, show(r));
    assert.equal(pod.read('apps', 'a', 'exit').trim(), '143');
    assert.ok(!existsSync(pod.file('apps', 'b', 'started')), 'b was started');
    assert.ok(!existsSync(pod.file('supervisor-status')));
    await cleaned(pod.dir);
  });

  test('an overlay is mounted while the pod runs and unmounted by the cleanup', async () => {
    const pod = newPod();
    const target = pod.file('apps', 'a', 'rootfs');
    pod.conf.push(`overlay\t${rootfs}\t${pod.file('upper')}\t${pod.file('work')}\t${target}`);
    mkdirSync(pod.file('upper'));
    mkdirSync(pod.file('work'));
    pod.app('a', ['/bin/sh', '-c', 'echo data > /written; sleep 2'], { root: target, readonly: false });
    pod.write();
    const m = start(pod.dir);
    assert.ok(await waitFor(() => existsSync(pod.file('supervisor-status')), 10_000), 'never ready');
    assert.equal(fsTypeOf(target), 'overlay');
    const r = await m.done;
    assert.equal(r.code, 0, show(r));
    assert.equal(readFileSync(pod.file('upper', 'written'), 'utf8'), 'data\n');
    await cleaned(pod.dir);
    assert.ok(!isMounted(target), `${target} is still mounted`);
  });

  test('an overlay that cannot be mounted: exit 254 with the reason', async () => {
    const pod = newPod();
    const target = pod.file('apps', 'a', 'rootfs');
    pod.conf.push(`overlay\t${pod.file('no-such-lower')}\t${pod.file('upper')}\t${pod.file('work')}\t${target}`);
    pod.app('a', ['/bin/true'], { root: target });
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 254, show(r));
    assert.match(r.stderr, new RegExp(`^rkt: cannot mount overlay on ${target}: No such file or directory$`, 'm'));
    assert.ok(!existsSync(pod.file('apps', 'a', 'started')));
    await cleaned(pod.dir);
  });

  test('a broken bundle: exit 254, runc error shown, apps already started are stopped, nothing left', async () => {
    const pod = newPod();
    const good = pod.app('good', ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 100 & wait']);
    const bad = pod.app('bad', ['/no/such/exec']);
    pod.write();
    const r = await run(pod.dir);
    assert.equal(r.code, 254, show(r));
    assert.match(r.stderr, /^rkt: app bad failed to start$/m);
    assert.match(r.stderr, /no such file or directory/i);
    assert.ok(r.stderr.indexOf('/no/such/exec') < r.stderr.indexOf('rkt: app bad failed'), 'runc error should come first');
    assert.equal(pod.read('apps', 'good', 'exit').trim(), '0');
    assert.ok(!existsSync(pod.file('apps', 'bad', 'started')));
    assert.ok(!existsSync(pod.file('supervisor-status')));
    await cleaned(pod.dir);
    const ids = runcIds();
    assert.ok(!ids.includes(bad.id) && !ids.includes(good.id), `left in runc: ${ids.join(' ')}`);
  });

  test('a malformed monitor.conf: exit 254 naming the line', async () => {
    const pod = newPod();
    pod.app('a', ['/bin/true']);
    pod.write(['exit-policy\tsometimes'], false);
    const r = await run(pod.dir);
    assert.equal(r.code, 254, show(r));
    assert.equal(r.stderr, 'rkt: invalid monitor.conf: exit-policy\tsometimes\n');
    assert.ok(!existsSync(pod.file('apps', 'a', 'started')));
  });

  test('a closed stdout does not stop the pod: logs still get everything', async () => {
    const pod = newPod();
    pod.app('a', ['/bin/sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done']);
    pod.write();
    const r = await run(pod.dir, { closeStdout: true });
    assert.equal(r.code, 0, show(r));
    const recs = logRecords(pod.file('logs', 'a.log'));
    assert.equal(recs.length, 2000);
    assert.equal(recs.at(-1)?.text, 'line 1999');
  });

  test('interactive: runc in the foreground with our stdio, its exit code, no logs', async () => {
    const pod = newPod();
    pod.conf.push('interactive\t1');
    pod.app('a', ['/bin/sh', '-c', 'read x; echo got $x; exit 7']);
    pod.write();
    const r = await run(pod.dir, { input: 'hello\n' });
    assert.equal(r.code, 7, show(r));
    assert.equal(r.stdout, 'got hello\n');
    assert.equal(pod.read('apps', 'a', 'exit').trim(), '7');
    assert.match(pod.read('apps', 'a', 'started'), /^\d+$/);
    assert.equal(pod.read('supervisor-status'), 'ready');
    assert.ok(!existsSync(pod.file('logs', 'a.log')));
    await cleaned(pod.dir);
  });
});
