// The pure parts of issue 6: seccomp sets and groups, isolator parsing,
// merging and validation, resource conversions, OCI fields, user
// namespace ranges, mount target checks.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkMountTarget } from '../../src/pod/targets.ts';
import { allocateRange, parsePrivateUsers } from '../../src/pod/userns.ts';
import { cliIsolators, cpuMillis, cpuQuota, memoryBytes, mergeIsolators, parseQuantity, resolveIsolators, ISO } from '../../src/stage1/isolators.ts';
import { appSpec, CAP_NAMES, DEFAULT_CAPS, type AppContainer } from '../../src/stage1/oci.ts';
import { defaultAllowList, defaultDenyList, expandGroup, ociSeccomp, parseSeccompFlag, seccompPolicy, SECCOMP_GROUPS } from '../../src/stage1/seccomp.ts';
import { ociResources, ociSecurity } from '../../src/stage1/security.ts';

const flags = (o: Record<string, string>) => ({ memory: '', cpu: '', 'cpu-shares': '', 'oom-score-adj': '', 'caps-retain': '', 'caps-remove': '', 'cap-retain': '', 'cap-remove': '', seccomp: '', ...o });

test('the default allow-list is docker\'s (rkt\'s @rkt/default-whitelist) and excludes the deny-list', () => {
  const allow = defaultAllowList('x64');
  assert.equal(new Set(allow).size, allow.length, 'no duplicates');
  assert.equal(allow.length, 309, '309 syscalls, as in rkt');
  for (const s of ['read', 'write', 'execve', 'clone', 'chroot', 'socket', 'mknod', 'setuid', 'capset', 'seccomp']) assert.ok(allow.includes(s), s);
  const deny = defaultDenyList();
  assert.equal(deny.length, 50);
  for (const s of deny) assert.ok(!allow.includes(s), `${s} is denied by default`);
  for (const s of ['mount', 'umount2', 'unshare', 'setns', 'ptrace', 'kexec_load', 'init_module', 'reboot', 'bpf', 'keyctl', 'pivot_root']) assert.ok(deny.includes(s), s);
  assert.ok(defaultAllowList('arm64').includes('set_tls'));
  assert.ok(!allow.includes('set_tls'));
});

test('seccomp groups expand; unknown groups are errors', () => {
  assert.deepEqual(expandGroup('@rkt/default-whitelist'), expandGroup('@docker/default-whitelist'));
  assert.deepEqual(expandGroup('@rkt/default-blacklist'), defaultDenyList());
  assert.ok(expandGroup('@systemd/mount').includes('mount'));
  assert.ok(expandGroup('@systemd/clock').includes('settimeofday'));
  assert.ok(expandGroup('@systemd/privileged').includes('chown'), '@privileged includes @chown');
  assert.ok(expandGroup('@systemd/process').includes('unshare'));
  for (const g of ['default-whitelist', 'network-io', 'obsolete', 'raw-io']) assert.ok(expandGroup(`@systemd/${g}`).length > 3, g);
  assert.equal(SECCOMP_GROUPS.length, 14);
  assert.throws(() => expandGroup('@systemd/nope'), /unknown seccomp group/);
  assert.throws(() => expandGroup('@x/y'), /unknown seccomp group/);
});

test('--seccomp flag parsing', () => {
  assert.deepEqual(parseSeccompFlag('mode=remove,errno=EPERM,mkdir,@systemd/clock'), { mode: 'remove', set: ['mkdir', '@systemd/clock'], errno: 'EPERM' });
  assert.deepEqual(parseSeccompFlag('mode=retain,@rkt/default-whitelist,mount'), { mode: 'retain', set: ['@rkt/default-whitelist', 'mount'] });
  assert.throws(() => parseSeccompFlag('mkdir'), /mode=retain or mode=remove is required/);
  assert.throws(() => parseSeccompFlag('mode=keep,mkdir'), /invalid --seccomp mode/);
  assert.throws(() => parseSeccompFlag('mode=remove'), /empty/);
  assert.throws(() => parseSeccompFlag('mode=remove,errno=EFOO,mkdir'), /unknown errno/);
  assert.throws(() => parseSeccompFlag('mode=remove,Mk-Dir'), /invalid syscall name/);
  assert.throws(() => parseSeccompFlag('mode=remove,foo=bar,mkdir'), /invalid --seccomp option/);
});

test('seccomp policy: default, @appc.io/all, @appc.io/empty, retain and remove', () => {
  assert.deepEqual(seccompPolicy(undefined), { kind: 'allow', syscalls: defaultAllowList() });
  assert.equal(seccompPolicy({ mode: 'retain', set: ['@appc.io/all'] }), undefined);
  assert.deepEqual(seccompPolicy({ mode: 'remove', set: ['@appc.io/empty'] }), { kind: 'allow', syscalls: defaultAllowList() });
  assert.deepEqual(seccompPolicy({ mode: 'remove', set: ['mkdir', 'mkdir'], errno: 'EPERM' }), { kind: 'deny', syscalls: ['mkdir'], errno: 'EPERM' });
  const r = seccompPolicy({ mode: 'retain', set: ['@systemd/clock', 'read'] });
  assert.equal(r?.kind, 'allow');
  assert.ok(r?.syscalls.includes('adjtimex') && r.syscalls.includes('read'));
});

test('OCI seccomp: allow-list kills with SIGSYS, errno when asked; deny-list allows the rest', () => {
  const kill = ociSeccomp({ kind: 'allow', syscalls: ['read'] }, 'x64');
  assert.equal(kill.defaultAction, 'SCMP_ACT_KILL_PROCESS');
  assert.deepEqual(kill.architectures, ['SCMP_ARCH_X86_64']);
  const rules = kill.syscalls as unknown[];
  assert.deepEqual(rules[0], { names: ['read'], action: 'SCMP_ACT_ALLOW' });
  // Syscalls newer than the allow-list answer ENOSYS (runc's rule, made explicit for crun).
  const enosys = rules[1] as { names: string[]; action: string; errnoRet: number };
  assert.equal(enosys.action, 'SCMP_ACT_ERRNO');
  assert.equal(enosys.errnoRet, 38);
  assert.ok(enosys.names.includes('clone3') && enosys.names.includes('statx'));
  const withStatx = ociSeccomp({ kind: 'allow', syscalls: ['read', 'statx'] }, 'x64');
  assert.ok(!((withStatx.syscalls as unknown[])[1] as { names: string[] }).names.includes('statx'), 'an allowed newer syscall stays allowed');
  const errno = ociSeccomp({ kind: 'allow', syscalls: ['read'], errno: 'EACCES' }, 'x64');
  assert.equal(errno.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(errno.defaultErrnoRet, 13);
  const deny = ociSeccomp({ kind: 'deny', syscalls: ['mkdir'], errno: 'EPERM' }, 'x64');
  assert.equal(deny.defaultAction, 'SCMP_ACT_ALLOW');
  assert.deepEqual(deny.syscalls, [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }]);
  const denyKill = ociSeccomp({ kind: 'deny', syscalls: ['mkdir'] }, 'x64');
  assert.deepEqual(denyKill.syscalls, [{ names: ['mkdir'], action: 'SCMP_ACT_KILL_PROCESS' }]);
});

test('quantities: memory bytes, CPU millicores, CFS quota', () => {
  assert.equal(memoryBytes('50M'), 50_000_000);
  assert.equal(memoryBytes('1G'), 1_000_000_000);
  assert.equal(memoryBytes('512Mi'), 512 * 2 ** 20);
  assert.equal(memoryBytes('1024Mi'), 2 ** 30);
  assert.equal(memoryBytes('1.5Gi'), 1.5 * 2 ** 30);
  assert.equal(memoryBytes('1000000'), 1_000_000);
  assert.throws(() => memoryBytes('1X'), /invalid memory limit/);
  assert.throws(() => memoryBytes('100'), /too small/);
  assert.equal(cpuMillis('500m'), 500);
  assert.equal(cpuMillis('1'), 1000);
  assert.equal(cpuMillis('2.5'), 2500);
  assert.throws(() => cpuMillis('0'), /too small/);
  assert.deepEqual(cpuQuota(500), { quota: 50_000, period: 100_000 });
  assert.deepEqual(cpuQuota(1), { quota: 1000, period: 100_000 }, 'the kernel minimum quota is 1 ms');
  assert.equal(parseQuantity('3k', 'x'), 3000);
});

test('CLI isolators: names and values as rkt writes them; both capability sets rejected', () => {
  const iso = cliIsolators(flags({ memory: '64Mi', cpu: '500m', 'cpu-shares': '512', 'oom-score-adj': '-100', 'caps-retain': 'net_bind_service,CAP_KILL', seccomp: 'mode=remove,errno=EPERM,mkdir' }));
  assert.deepEqual(iso, [
    { name: ISO.memory, value: { limit: '64Mi' } },
    { name: ISO.cpu, value: { limit: '500m' } },
    { name: ISO.cpuShares, value: 512 },
    { name: ISO.oomScoreAdj, value: -100 },
    { name: ISO.capsRetain, value: { set: ['CAP_NET_BIND_SERVICE', 'CAP_KILL'] } },
    { name: ISO.seccompRemove, value: { set: ['mkdir'], errno: 'EPERM' } },
  ]);
  assert.deepEqual(cliIsolators(flags({ 'cap-remove': 'CAP_CHOWN' })), [{ name: ISO.capsRemove, value: { set: ['CAP_CHOWN'] } }], 'deprecated alias');
  assert.throws(() => cliIsolators(flags({ 'caps-retain': 'CAP_KILL', 'caps-remove': 'CAP_CHOWN' })), /both --caps-retain and --caps-remove/);
  assert.throws(() => cliIsolators(flags({ 'oom-score-adj': '2000' })), /--oom-score-adj/);
  assert.throws(() => cliIsolators(flags({ 'cpu-shares': 'x' })), /--cpu-shares/);
});

test('CLI isolators replace the image\'s (per name, and per capability/seccomp family)', () => {
  const image = [
    { name: ISO.capsRemove, value: { set: ['CAP_CHOWN'] } },
    { name: ISO.seccompRetain, value: { set: ['@rkt/default-whitelist'] } },
    { name: ISO.memory, value: { limit: '1G' } },
    { name: ISO.cpu, value: { limit: '1' } },
  ];
  const cli = [{ name: ISO.capsRetain, value: { set: ['CAP_KILL'] } }, { name: ISO.seccompRemove, value: { set: ['mkdir'] } }, { name: ISO.memory, value: { limit: '64Mi' } }];
  assert.deepEqual(mergeIsolators(image, cli).map((i) => i.name), [ISO.cpu, ISO.capsRetain, ISO.seccompRemove, ISO.memory]);
  assert.deepEqual(mergeIsolators(image, []), image);
});

test('resolving isolators: caps sets, conflicts, seccomp, resources, no-new-privileges', () => {
  const r = resolveIsolators([{ name: ISO.capsRetain, value: { set: ['CAP_KILL'] } }, { name: ISO.memory, value: { limit: '64Mi' } }, { name: ISO.cpu, value: { limit: '250m' } }, { name: ISO.cpuShares, value: 100 }, { name: ISO.oomScoreAdj, value: 500 }], 0, CAP_NAMES);
  assert.deepEqual(r.caps, ['CAP_KILL']);
  assert.equal(r.memoryBytes, 64 * 2 ** 20);
  assert.equal(r.cpuMillis, 250);
  assert.equal(r.cpuShares, 100);
  assert.equal(r.oomScoreAdj, 500);
  assert.deepEqual(r.seccomp, { kind: 'allow', syscalls: defaultAllowList() }, 'default seccomp');
  const rm = resolveIsolators([{ name: ISO.capsRemove, value: { set: ['CAP_CHOWN', 'CAP_KILL'] } }], 0, CAP_NAMES);
  assert.deepEqual(rm.caps, DEFAULT_CAPS.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_KILL'));
  assert.throws(() => resolveIsolators([{ name: ISO.capsRetain, value: { set: ['CAP_KILL'] } }, { name: ISO.capsRemove, value: { set: ['CAP_KILL'] } }], 0, CAP_NAMES), /both a capabilities-retain-set and a capabilities-remove-set/);
  assert.throws(() => resolveIsolators([{ name: ISO.capsRetain, value: { set: ['CAP_NOPE'] } }], 0, CAP_NAMES), /unknown capability/);
  assert.throws(() => resolveIsolators([{ name: ISO.seccompRetain, value: { set: ['read'] } }, { name: ISO.seccompRemove, value: { set: ['mkdir'] } }], 0, CAP_NAMES), /too many seccomp isolators/);
  assert.throws(() => resolveIsolators([{ name: ISO.seccompRemove, value: { set: 'mkdir' } }], 0, CAP_NAMES), /"set" must be a list/);
  assert.equal(resolveIsolators([{ name: ISO.seccompRetain, value: { set: ['@appc.io/all'] } }], 0, CAP_NAMES).seccomp, null);
  assert.equal(resolveIsolators([{ name: ISO.noNewPrivs, value: true }], 0, CAP_NAMES).noNewPrivileges, true);
  assert.throws(() => resolveIsolators([{ name: ISO.noNewPrivs, value: 'yes' }], 0, CAP_NAMES), /true or false/);
  // Unimplemented isolators are kept and ignored.
  assert.doesNotThrow(() => resolveIsolators([{ name: 'resource/network-bandwidth', value: { limit: '1M' } }], 0, CAP_NAMES));
});

test('OCI security: opt-outs lift exactly their part; no_new_privs forced for non-root apps with a filter', () => {
  const sec = resolveIsolators([], 0, CAP_NAMES);
  const all = [...CAP_NAMES];
  const def = ociSecurity(sec, 0, { insecureCapabilities: false, insecureSeccomp: false, allCaps: all });
  assert.deepEqual(def.caps, DEFAULT_CAPS);
  assert.equal(def.seccomp?.defaultAction, 'SCMP_ACT_KILL_PROCESS');
  assert.equal(def.noNewPrivileges, false, 'root app: rkt does not force it');
  assert.equal(ociSecurity(sec, 1000, { insecureCapabilities: false, insecureSeccomp: false, allCaps: all }).noNewPrivileges, true);
  const noSec = ociSecurity(sec, 1000, { insecureCapabilities: false, insecureSeccomp: true, allCaps: all });
  assert.equal(noSec.seccomp, undefined);
  assert.equal(noSec.noNewPrivileges, false);
  assert.deepEqual(noSec.caps, DEFAULT_CAPS);
  const noCaps = ociSecurity(sec, 0, { insecureCapabilities: true, insecureSeccomp: false, allCaps: all });
  assert.deepEqual(noCaps.caps, all);
  assert.ok(noCaps.seccomp);
  // Capabilities the caller lacks are never asked for.
  assert.deepEqual(ociSecurity(resolveIsolators([{ name: ISO.capsRetain, value: { set: ['CAP_KILL', 'CAP_SYS_RESOURCE'] } }], 0, CAP_NAMES), 0, { insecureCapabilities: false, insecureSeccomp: false, allCaps: ['CAP_KILL'] }).caps, ['CAP_KILL']);
  assert.deepEqual(ociResources({ seccomp: null, noNewPrivileges: false, memoryBytes: 1000000, cpuMillis: 500, cpuShares: 7 }), { memory: { limit: 1000000 }, cpu: { shares: 7, quota: 50000, period: 100000 } });
  assert.deepEqual(ociResources({ seccomp: null, noNewPrivileges: false }), {});
});

test('appSpec carries seccomp, resources, oomScoreAdj and the user namespace', () => {
  const c: AppContainer = {
    rootfs: '/r', readonlyRootfs: false, args: ['/bin/sh'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], hostname: 'h', terminal: false,
    namespaces: { pid: 'new', network: 'new', ipc: 'new', uts: 'new' }, mounts: [], caps: DEFAULT_CAPS, insecurePaths: false, cgroupsPath: '/x', noNewPrivileges: true,
    seccomp: { defaultAction: 'SCMP_ACT_ALLOW' }, resources: { memory: { limit: 5000 } }, oomScoreAdj: 300, userns: { uidBase: 131072, count: 65536 },
  };
  const s = appSpec(c) as { process: Record<string, unknown>; linux: Record<string, unknown> };
  assert.equal(s.process.oomScoreAdj, 300);
  assert.equal(s.process.noNewPrivileges, true);
  assert.deepEqual(s.linux.seccomp, { defaultAction: 'SCMP_ACT_ALLOW' });
  assert.deepEqual(s.linux.resources, { memory: { limit: 5000 }, devices: [{ allow: false, access: 'rwm' }] });
  assert.deepEqual(s.linux.uidMappings, [{ containerID: 0, hostID: 131072, size: 65536 }]);
  assert.ok((s.linux.namespaces as { type: string }[]).some((n) => n.type === 'user'));
  const plain = appSpec({ ...c, seccomp: undefined, userns: undefined, oomScoreAdj: undefined }) as { process: Record<string, unknown>; linux: Record<string, unknown> };
  assert.equal(plain.linux.seccomp, undefined);
  assert.equal(plain.linux.uidMappings, undefined);
  assert.equal('oomScoreAdj' in plain.process, false);
});

test('--private-users ranges', () => {
  const r = allocateRange(() => 20);
  assert.deepEqual(r, { uidBase: 20 * 65536, count: 65536 });
  for (let i = 0; i < 50; i++) {
    const x = allocateRange();
    assert.equal(x.uidBase % 65536, 0);
    assert.ok(x.uidBase >= 16 * 65536 && x.uidBase + x.count <= 2 ** 31);
  }
  assert.deepEqual(parsePrivateUsers('200000:1000'), { uidBase: 200000, count: 1000 });
  assert.equal(parsePrivateUsers('false'), undefined);
  assert.throws(() => parsePrivateUsers('abc'), /invalid --private-users/);
});

test('mount targets through symlinks pointing outside the rootfs are refused', () => {
  const root = mkdtempSync(join(tmpdir(), 'rkt-targets-'));
  try {
    mkdirSync(join(root, 'srv/data'), { recursive: true });
    symlinkSync('/etc', join(root, 'abs'));
    symlinkSync('../../../../etc', join(root, 'climb'));
    symlinkSync('srv/data', join(root, 'rel'));
    symlinkSync('../srv', join(root, 'srv/up'));
    assert.throws(() => checkMountTarget(root, '/abs', 'a'), /symlink \/abs -> \/etc, which points outside/);
    assert.throws(() => checkMountTarget(root, '/abs/x', 'a'), /points outside/);
    assert.throws(() => checkMountTarget(root, '/climb/x', 'a'), /points outside/);
    assert.doesNotThrow(() => checkMountTarget(root, '/rel/x', 'a'));
    assert.doesNotThrow(() => checkMountTarget(root, '/srv/up/data', 'a'));
    assert.doesNotThrow(() => checkMountTarget(root, '/not/there', 'a'));
    assert.doesNotThrow(() => checkMountTarget(root, '/../../x', 'a'), 'plain .. in a target is clamped, as the runtime does');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
