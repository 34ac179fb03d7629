// Secure by default (issue 6), end to end: every check runs a real pod
// (runc, overlayfs, the monitor) and proves a denial from inside it, or
// that an opt-out lifts exactly its part. Busybox applets only, plus one
// tiny static setuid program when a C compiler is there.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildAci, fixturesAvailable } from '../helpers/aci.ts';
import { assertNoLeaks, snapshot, type Snapshot } from '../helpers/leaks.ts';
import { RKT_BIN, assertOk, savedUuid, assertRktError, describeRun, makeEnv, rkt, type RktEnv } from '../helpers/rkt.ts';
import { CAP_NAMES, DEFAULT_CAPS } from '../../src/stage1/oci.ts';

const isRoot = process.getuid?.() === 0;
const fx = fixturesAvailable();
const hasRunc = spawnSync('runc', ['--version']).status === 0;
const skip = !isRoot ? 'needs root' : !fx.ok ? `missing fixtures: ${fx.missing.join(', ')}` : !hasRunc ? 'runc not installed' : false;
if (skip) console.log(`# skipping security tests: ${skip}`);

const IMG = 'example.com/rkt-test/sec';
const BAD_LINK = 'example.com/rkt-test/sec-badlink';
const TWO_SECCOMP = 'example.com/rkt-test/sec-two-seccomp';
const IMG_CAPS = 'example.com/rkt-test/sec-image-caps';
const SIGSYS_EXIT = 128 + 31;

function mask(caps: readonly string[]): string {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(CAP_NAMES.indexOf(c));
  return m.toString(16).padStart(16, '0');
}

/** `KEY=value` lines printed by a pod script. */
function kv(out: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const eq = l.indexOf('=');
    if (eq > 0 && /^[A-Za-z_][\w-]*$/.test(l.slice(0, eq))) o[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return o;
}

// The probe run inside pods: each line KEY=VALUE.
const PROBE = [
  'echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"',
  'echo "seccomp=$(grep "^Seccomp:" /proc/self/status | cut -f2)"',
  'echo "nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)"',
  'sh -c "mount -t tmpfs none /tmp" 2>/tmp/mount.err; echo "mount=$?"; echo "mount_err=$(cat /tmp/mount.err | tr -d \'\\n\')"',
  'sh -c "unshare -U true" 2>/dev/null; echo "unshare=$?"',
  'echo "kallsyms=$(cat /proc/kallsyms 2>/dev/null | wc -c)"',
  'echo "kcore=$(head -c 16 /proc/kcore 2>/dev/null | wc -c)"',
  'echo "firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l)"',
  'echo "sys_ro=$(awk \'$2 == "/sys" { print $4 }\' /proc/mounts | cut -d, -f1)"',
  'echo "sysrq_ro=$(awk \'$2 == "/proc/sysrq-trigger" { print $4 }\' /proc/mounts | cut -d, -f1)"',
  'echo "core_pattern_ro=$(awk \'$2 == "/proc/sys/kernel/core_pattern" { print $4 }\' /proc/mounts | cut -d, -f1)"',
].join('; ');

describe('secure by default', { skip, concurrency: false }, () => {
  let env: RktEnv;
  let before0: Snapshot;
  let suid = false;

  before(async () => {
    before0 = snapshot();
    env = makeEnv('rkt-sec-');
    const files: Record<string, { content: Buffer; mode: number } | string> = { 'etc/hosts': '' };
    // A set-uid-root program printing its effective uid.
    const src = join(env.work, 'suid.c');
    writeFileSync(src, '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("euid=%d\\n",(int)geteuid());return 0;}\n');
    const cc = spawnSync('cc', ['-static', '-O2', '-o', join(env.work, 'suid-id'), src], { stdio: 'ignore' });
    if (cc.status === 0) {
      suid = true;
      files['bin/suid-id'] = { content: readFileSync(join(env.work, 'suid-id')), mode: 0o4755 };
    }
    const img = await buildAci(env.work, { name: IMG, exec: ['/bin/sh'], files });
    const bad = await buildAci(env.work, { name: BAD_LINK, exec: ['/bin/sh'], files: { data: { symlink: '/tmp/outside' }, inside: { symlink: 'bin/../tmp' } } });
    const two = await buildAci(env.work, {
      name: TWO_SECCOMP,
      exec: ['/bin/true'],
      editManifest: (m) => {
        (m.app as Record<string, unknown>).isolators = [
          { name: 'os/linux/seccomp-retain-set', value: { set: ['@rkt/default-whitelist'] } },
          { name: 'os/linux/seccomp-remove-set', value: { set: ['mkdir'] } },
        ];
        return m;
      },
    });
    const imgCaps = await buildAci(env.work, {
      name: IMG_CAPS,
      exec: ['/bin/sh', '-c', 'grep CapEff /proc/self/status | cut -f2'],
      editManifest: (m) => {
        (m.app as Record<string, unknown>).isolators = [
          { name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_KILL'] } },
          { name: 'resource/memory', value: { limit: '100M' } },
        ];
        return m;
      },
    });
    for (const a of [img, bad, two, imgCaps]) assertOk(await rkt(env, ['--insecure-options=image', 'fetch', a.path]), 'fetch');
  });

  after(async () => {
    await rkt(env, ['gc', '--grace-period=0s']);
    env.cleanup();
    await assertNoLeaks(before0, 8000);
  });

  // Pods get no network unless a test asks (security does not depend on it, and it keeps runs quick).
  const run = (args: string[], opts: Parameters<typeof rkt>[2] = {}) => rkt(env, ['run', ...(args.some((a) => a.startsWith('--net')) ? [] : ['--net=none']), ...args], { timeout: 60_000, ...opts });
  const probe = async (pre: string[], post: string[] = []) => {
    const r = await run([...pre, IMG, ...post, '--exec=/bin/sh', '--', '-c', PROBE]);
    assert.equal(r.code, 0, describeRun(r));
    return kv(r.stdout);
  };

  test('a default pod: default capabilities, seccomp, masked and read-only paths, no devices', async () => {
    const p = await probe([]);
    assert.equal(p.capeff, mask(DEFAULT_CAPS), 'CapEff is exactly the 14 default capabilities');
    assert.equal(p.seccomp, '2', 'a seccomp filter is loaded');
    assert.equal(p.mount, String(SIGSYS_EXIT), 'mount(2) is not in the allow-list: SIGSYS');
    assert.equal(p.unshare, String(SIGSYS_EXIT), 'unshare(2) is not in the allow-list: SIGSYS');
    assert.equal(p.kallsyms, '0', '/proc/kallsyms is masked');
    assert.equal(p.kcore, '0', '/proc/kcore is masked');
    assert.equal(p.firmware, '0', '/sys/firmware is masked');
    assert.equal(p.sys_ro, 'ro', '/sys is read-only');
    // This kernel may lack /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ) or /proc/kcore: then they are absent inside too.
    if (existsSync('/proc/sysrq-trigger')) assert.equal(p.sysrq_ro, 'ro', '/proc/sysrq-trigger is read-only');
    assert.equal(p.core_pattern_ro, 'ro', '/proc/sys/kernel/core_pattern is read-only');
    const w = await run([IMG, '--exec=/bin/sh', '--', '-c', 'echo h > /proc/sysrq-trigger && echo WROTE1; echo core > /proc/sys/kernel/core_pattern && echo WROTE2; echo > /sys/kernel/uevent_helper && echo WROTE3; exit 0']);
    assert.equal(w.code, 0, describeRun(w));
    assert.doesNotMatch(w.stdout, /WROTE/, 'writes to /proc/sysrq-trigger, core_pattern and /sys fail');
    // CAP_MKNOD is in the default set, but the devices cgroup denies using a node.
    const dev = await run([IMG, '--exec=/bin/sh', '--', '-c', 'mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda']);
    assert.notEqual(dev.code, 0, describeRun(dev));
    assert.match(dev.stderr, /Operation not permitted/);
    const devs = await run([IMG, '--exec=/bin/ls', '--', '/dev']);
    // crun adds the runtime spec's optional /dev/core link (to /proc/kcore, which is masked).
    assert.deepEqual(devs.stdout.split('\n').filter((d) => d && d !== 'core').sort(), ['fd', 'full', 'init', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'], 'a minimal /dev');
    const kcore = await run([IMG, '--exec=/bin/sh', '--', '-c', 'head -c 16 /dev/core /proc/kcore | wc -c']);
    assert.equal(kcore.stdout.trim(), '0', 'kcore is masked, through /dev/core too');
  });

  test('--caps-retain / --caps-remove, image isolators replaced by the CLI, conflicts', async () => {
    const retain = await probe([], ['--caps-retain=CAP_NET_BIND_SERVICE,CAP_KILL']);
    assert.equal(retain.capeff, mask(['CAP_NET_BIND_SERVICE', 'CAP_KILL']));
    const remove = await run([IMG, '--caps-remove=CAP_CHOWN', '--exec=/bin/sh', '--', '-c', 'touch /tmp/f; chown 1:1 /tmp/f; echo "chown=$?"; grep CapEff /proc/self/status | cut -f2']);
    assert.match(remove.stdout, /chown=1/, describeRun(remove));
    assert.match(remove.stdout, new RegExp(mask(DEFAULT_CAPS.filter((c) => c !== 'CAP_CHOWN'))));
    const both = await run([IMG, '--caps-retain=CAP_KILL', '--caps-remove=CAP_CHOWN']);
    assertRktError(both, /both --caps-retain and --caps-remove/);
    const fromImage = await run([IMG_CAPS]);
    assert.equal(fromImage.stdout.trim(), mask(['CAP_KILL']), describeRun(fromImage));
    const replaced = await run([IMG_CAPS, '--caps-retain=CAP_CHOWN']);
    assert.equal(replaced.stdout.trim(), mask(['CAP_CHOWN']), describeRun(replaced));
    // The resolved isolators are recorded in the pod manifest.
    const p = assertOk(await rkt(env, ['prepare', '--quiet', IMG_CAPS, '--caps-retain=CAP_CHOWN', '--memory=64Mi', '--seccomp=mode=remove,errno=EPERM,mkdir']));
    const m = JSON.parse(assertOk(await rkt(env, ['cat-manifest', p.stdout.trim()])).stdout) as { apps: { app: { isolators: { name: string; value: unknown }[] } }[] };
    const iso = Object.fromEntries(m.apps[0]!.app.isolators.map((i) => [i.name, i.value]));
    assert.deepEqual(iso['os/linux/capabilities-retain-set'], { set: ['CAP_CHOWN'] });
    assert.deepEqual(iso['resource/memory'], { limit: '64Mi' });
    assert.deepEqual(iso['os/linux/seccomp-remove-set'], { set: ['mkdir'], errno: 'EPERM' });
    assertOk(await rkt(env, ['rm', p.stdout.trim()]));
  });

  test('--seccomp remove: EPERM with errno, SIGSYS without; retain; conflicts', async () => {
    const eperm = await run([IMG, '--seccomp=mode=remove,errno=EPERM,mkdir,mkdirat', '--exec=/bin/sh', '--', '-c', 'mkdir /tmp/x; echo "mkdir=$?"']);
    assert.match(eperm.stdout, /mkdir=1/, describeRun(eperm));
    assert.match(eperm.stderr, /Operation not permitted/);
    const kill = await run([IMG, '--seccomp=mode=remove,mkdir,mkdirat', '--exec=/bin/sh', '--', '-c', 'mkdir /tmp/x; echo "mkdir=$?"']);
    assert.match(kill.stdout, new RegExp(`mkdir=${SIGSYS_EXIT}`), describeRun(kill));
    // A remove set allows the rest, mount(2) included: it then fails for lack of CAP_SYS_ADMIN only.
    const groups = await probe([], ['--seccomp=mode=remove,errno=ENOSYS,@systemd/clock,@docker/default-blacklist']);
    assert.ok(groups.mount !== '0' && groups.mount !== String(SIGSYS_EXIT), `mount denied with ENOSYS, not killed: exit ${groups.mount}`);
    assert.match(groups.mount_err ?? '', /not implemented|Function not implemented/i);
    const retainAll = await probe([], ['--seccomp=mode=retain,@appc.io/all']);
    assert.equal(retainAll.seccomp, '0', '@appc.io/all in a retain set: no filter');
    const retain = await run([IMG, '--seccomp=mode=retain,errno=EACCES,@rkt/default-whitelist', '--exec=/bin/sh', '--', '-c', 'unshare -U true; echo "unshare=$?"']);
    assert.match(retain.stdout, /unshare=1/, describeRun(retain));
    assertRktError(await run([TWO_SECCOMP]), /too many seccomp isolators/);
    assertRktError(await run([IMG, '--seccomp=mkdir']), /mode=retain or mode=remove is required/);
    assertRktError(await run([IMG, '--seccomp=mode=remove,@nope/x']), /unknown seccomp group/);
    assertRktError(await run([IMG, '--seccomp=mode=remove,errno=EWHAT,mkdir']), /unknown errno/);
  });

  test('--memory: a process over the limit is OOM-killed and rkt status says so', async () => {
    const uuidFile = join(env.work, 'uuid-oom');
    const r = await run([`--uuid-file-save=${uuidFile}`, IMG, '--memory=16M', '--exec=/bin/sh', '--', '-c', 'a=xxxxxxxxxxxxxxxx; while true; do a="$a$a"; done']);
    assert.equal(r.code, 137, describeRun(r));
    const st = assertOk(await rkt(env, ['status', '--wait=10s', readFileSync(uuidFile, 'utf8').trim()])).stdout;
    assert.match(st, /^app-sec=137$/m);
    assert.match(st, /^app-sec-reason=oom-killed$/m);
  });

  test('--cpu, --cpu-shares, --memory and --oom-score-adj land in the cgroup and the process', async () => {
    const uuidFile = join(env.work, 'uuid-cpu');
    const child = spawn(RKT_BIN, [...env.globalArgs, 'run', '--net=none', `--uuid-file-save=${uuidFile}`, IMG, '--cpu=250m', '--cpu-shares=123', '--memory=64Mi', '--oom-score-adj=500', '--exec=/bin/sleep', '--', '300'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    try {
      const uuid = await savedUuid(uuidFile);
      assertOk(await rkt(env, ['status', '--wait-ready=10s', uuid]));
      const id = `rkt-${uuid}-sec`;
      const cg = (ctl: string, f: string) => readFileSync(`/sys/fs/cgroup/${ctl}/${id}/${f}`, 'utf8').trim();
      assert.equal(cg('cpu', 'cpu.shares'), '123');
      assert.equal(cg('cpu', 'cpu.cfs_period_us'), '100000');
      assert.equal(cg('cpu', 'cpu.cfs_quota_us'), '25000', '250m = a quarter of a CPU');
      assert.equal(cg('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
      const pids = cg('cpu', 'cgroup.procs').split('\n').filter(Boolean);
      assert.ok(pids.some((p) => readFileSync(`/proc/${p}/oom_score_adj`, 'utf8').trim() === '500'), 'oom_score_adj of the app');
      assert.equal(['runc', 'crun'].some((rt) => spawnSync(rt, ['list'], { encoding: 'utf8' }).stdout.includes(id)), true);
      assertOk(await rkt(env, ['stop', uuid]));
      await exited;
    } finally {
      child.kill('SIGKILL');
    }
    assertRktError(await run([IMG, '--memory=lots']), /invalid memory limit/);
    assertRktError(await run([IMG, '--cpu-shares=1']), /--cpu-shares/);
  });

  test('set-uid files do not raise a non-root app (no_new_privs with seccomp)', async (t) => {
    if (!suid) return t.skip('no C compiler for the set-uid probe');
    const r = await run([IMG, '--user=65534', '--group=65534', '--exec=/bin/sh', '--', '-c', 'grep NoNewPrivs /proc/self/status | cut -f2; /bin/suid-id']);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^1\neuid=65534$/m);
    const opt = await run(['--insecure-options=seccomp', IMG, '--user=65534', '--group=65534', '--exec=/bin/suid-id']);
    assert.match(opt.stdout, /euid=0/, 'without a filter no_new_privs is not forced, as in rkt');
  });

  test('--private-users: shifted uid map; rootfs, overlay and volumes still root-owned inside', async () => {
    const vol = join(env.work, 'uvol');
    mkdirSync(vol, { recursive: true });
    writeFileSync(join(vol, 'host-file'), 'x');
    const uuidFile = join(env.work, 'uuid-userns');
    // The default network: a one-app pod joins a network namespace made outside its user namespace.
    const r = await run(['--private-users', '--net=default', `--uuid-file-save=${uuidFile}`, `--volume=v,kind=host,source=${vol}`, IMG, '--mount=volume=v,target=/vol', '--exec=/bin/sh', '--', '-c',
      'echo "map=$(cat /proc/self/uid_map | tr -s " " | sed "s/^ //")"; echo "bin=$(stat -c %u:%g /bin/busybox)"; touch /made; echo "made=$(stat -c %u:%g /made)"; echo "vol=$(stat -c %u:%g /vol/host-file)"; echo "id=$(id -u)"']);
    assert.equal(r.code, 0, describeRun(r));
    const o = kv(r.stdout);
    const [inside, host, size] = (o.map ?? '').split(' ').map(Number);
    assert.equal(inside, 0);
    assert.ok(host !== undefined && host >= 65536 && host % 65536 === 0, `a shifted, 65536-aligned range (${o.map})`);
    assert.equal(size, 65536);
    assert.equal(o.bin, '0:0', 'image files look root-owned');
    assert.equal(o.made, '0:0', 'files created in the overlay look root-owned');
    assert.equal(o.vol, '0:0', 'volume files look root-owned (idmapped volume)');
    assert.equal(o.id, '0');
    // On the host, the overlay's new file belongs to the shifted range.
    const uuid = readFileSync(uuidFile, 'utf8').trim();
    const pod = ['run', 'exited-garbage'].map((p) => join(env.dir, 'pods', p, uuid)).find((d) => existsSync(d)) as string;
    assert.equal(statSync(join(pod, 'apps', 'sec', 'upper', 'made')).uid, host);
    await rkt(env, ['status', '--wait=10s', uuid]);
    for (let i = 0; i < 50 && !existsSync(join(pod, 'cleaned')); i++) await new Promise((res) => setTimeout(res, 100));
    assertOk(await rkt(env, ['rm', uuid]));
    assert.equal(existsSync(`/run/rkt/userns/${uuid}`), false, 'the container-visible mount dir is gone');
    // --no-overlay: the private copy is seen through an idmapped bind of itself, nothing chowned.
    const copy = await run(['--private-users', '--no-overlay', IMG, '--exec=/bin/sh', '--', '-c', 'stat -c %u:%g /bin/busybox; cat /proc/self/uid_map']);
    assert.equal(copy.code, 0, describeRun(copy));
    assert.match(copy.stdout, /^0:0\n\s*0\s+[1-9]\d*\s+65536$/m);
    // Several apps: the pause container owns the user namespace and the apps join it.
    const two = await run(['--private-users', '--net=none', IMG, '--name=one', '--exec=/bin/sh', '--', '-c', 'touch /one; sleep 1', '---', IMG, '--name=two', '--exec=/bin/sh', '--', '-c', 'cat /proc/self/uid_map; stat -c %u:%g /bin/busybox; ps']);
    assert.equal(two.code, 0, describeRun(two));
    assert.match(two.stdout, /^\s*0\s+[1-9]\d*\s+65536\n0:0$/m);
    assert.match(two.stdout, /sleep 1/, 'one PID namespace');
  });

  test('a mount target that is a symlink out of the rootfs is refused', async () => {
    const r = await run(['--volume=d,kind=empty', BAD_LINK, '--mount=volume=d,target=/data']);
    assertRktError(r, /points outside the app's root filesystem/);
    // A target through a symlink that stays inside is fine.
    const ok = await run(['--volume=d,kind=empty', BAD_LINK, '--mount=volume=d,target=/inside/x', '--exec=/bin/sh', '--', '-c', 'touch /inside/x/f && ls /tmp/x']);
    assert.equal(ok.code, 0, describeRun(ok));
    assert.match(ok.stdout, /^f$/m);
  });

  test('each --insecure-options value lifts exactly its part', async () => {
    const caps = await probe(['--insecure-options=capabilities']);
    assert.ok(caps.capeff !== mask(DEFAULT_CAPS) && (BigInt(`0x${caps.capeff}`) & (1n << 21n)) !== 0n, 'capabilities: CAP_SYS_ADMIN held');
    assert.equal(caps.seccomp, '2', 'capabilities: still filtered');
    assert.equal(caps.mount, String(SIGSYS_EXIT), 'capabilities: mount still blocked by seccomp');
    assert.equal(caps.kallsyms, '0', 'capabilities: paths still masked');

    const sec = await probe(['--insecure-options=seccomp']);
    assert.equal(sec.seccomp, '0', 'seccomp: no filter');
    assert.equal(sec.capeff, mask(DEFAULT_CAPS), 'seccomp: default capabilities');
    assert.equal(sec.unshare, '0', 'seccomp: unshare(CLONE_NEWUSER) now works');
    assert.ok(sec.mount !== '0' && sec.mount !== String(SIGSYS_EXIT), `seccomp: mount reaches the kernel, which refuses it (no CAP_SYS_ADMIN): exit ${sec.mount}`);
    assert.match(sec.mount_err ?? '', /Operation not permitted|permission denied/i);
    assert.equal(sec.kallsyms, '0', 'seccomp: paths still masked');

    const paths = await probe(['--insecure-options=paths']);
    assert.notEqual(paths.kallsyms, '0', 'paths: /proc/kallsyms readable');
    assert.equal(paths.sys_ro, 'rw', 'paths: /sys writable');
    assert.equal(paths.core_pattern_ro, '', 'paths: /proc/sys/kernel/core_pattern not remounted read-only');
    assert.equal(paths.seccomp, '2');
    assert.equal(paths.capeff, mask(DEFAULT_CAPS));

    const all = await probe(['--insecure-options=all-run']);
    assert.equal(all.seccomp, '0');
    assert.equal(all.mount, '0', 'all-run: mount works');
    assert.notEqual(all.kallsyms, '0');
  });
});
