// Pod networking end to end through the real CNI plugins (Debian's
// containernetworking-plugins), runc and iptables. Traffic goes only between
// the host and pods this file starts (127.0.0.1, the pod network's host
// address, pod addresses). The file restores what it changes: sysctls the
// plugins turn on, IPAM dirs of its networks, a veth pair it makes as a
// macvlan/ipvlan master; the leak check compares netns, veths, iptables.
//
// RKT_NET_RUNS (default 50): how many sequential pods the leak test runs.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildAci, fixturesAvailable } from '../helpers/aci.ts';
import { httpGet } from '../helpers/https.ts';
import { assertNoLeaks, snapshot, type Snapshot } from '../helpers/leaks.ts';
import { RKT_BIN, assertOk, assertRktError, describeRun, makeEnv, rkt, type RktEnv } from '../helpers/rkt.ts';

const isRoot = process.getuid?.() === 0;
const fx = fixturesAvailable();
const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const skip = !isRoot ? 'needs root'
  : !fx.ok ? `missing fixtures: ${fx.missing.join(', ')}`
  : !has('runc', ['--version']) ? 'runc not installed'
  : !existsSync('/usr/lib/cni/ptp') ? 'CNI plugins not installed (/usr/lib/cni)'
  : !has('iptables-save', []) ? 'iptables not installed'
  : false;
if (skip) console.log(`# skipping net tests: ${skip}`);

const IMG = 'example.com/rkt-test/net';
const RUNS = Number(process.env.RKT_NET_RUNS ?? 50);
const IPAM = '/var/lib/cni/networks';
const SYSCTLS = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding'];
const TEST_NETS = ['default', 'default-restricted', 'rkttest-br', 'rkttest-v6', 'rkttest-tiny', 'rkttest-dns', 'rkttest-mac', 'rkttest-ipv'];
const MASTER = 'rkttestm0';

function sh(cmd: string): string {
  return spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
}

function netnsList(): string[] {
  return sh('ip netns list').split('\n').map((l) => l.split(' ')[0] ?? '').filter((l) => l.startsWith('rkt-'));
}

/**
 * Other people's pods (other test files running at the same time) come and
 * go: what counts as left over here is a pod network (netns, iptables rule)
 * that appeared since `before` and whose pod has no directory in any rkt
 * data dir, still so after a few seconds.
 */
function podDirExists(uuid: string): boolean {
  const roots = ['/var/lib/rkt', ...readdirSync('/tmp').map((d) => join('/tmp', d, 'data'))];
  return roots.some((r) => ['embryo', 'prepare', 'prepared', 'run', 'exited-garbage', 'garbage'].some((pl) => existsSync(join(r, 'pods', pl, uuid))));
}

function orphansNow(nsBefore: readonly string[], iptBefore: string): string[] {
  const old = new Set(iptBefore.split('\n'));
  const ns = netnsList().filter((n) => !nsBefore.includes(n)).map((n) => n.slice(4));
  const rules = sh('iptables-save -t nat').split('\n').filter((l) => l.includes('rkt:') && !old.has(l)).map((l) => /rkt:([0-9a-f-]{36})/.exec(l)?.[1] ?? l);
  return [...new Set([...ns, ...rules])].filter((u) => !podDirExists(u));
}

async function orphans(nsBefore: readonly string[], iptBefore: string): Promise<string[]> {
  let o = orphansNow(nsBefore, iptBefore);
  for (let i = 0; i < 25 && o.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 200));
    o = orphansNow(nsBefore, iptBefore);
  }
  return o;
}

function ipamFiles(net: string): string[] {
  try {
    return readdirSync(join(IPAM, net)).filter((n) => n !== 'lock' && !n.startsWith('last_reserved_ip'));
  } catch {
    return [];
  }
}

describe('pod networking', { skip, concurrency: false }, () => {
  let env: RktEnv;
  let before0: Snapshot;
  const sysctls = new Map<string, string>();
  const ipamBefore = new Set<string>();
  const children: ChildProcess[] = [];
  let port = 0;
  let hasIpvlan = false;

  before(async () => {
    before0 = snapshot();
    for (const s of SYSCTLS) if (existsSync(s)) sysctls.set(s, readFileSync(s, 'utf8').trim());
    for (const n of TEST_NETS) if (existsSync(join(IPAM, n))) ipamBefore.add(n);
    env = makeEnv('rkt-net-');
    const img = await buildAci(env.work, {
      name: IMG,
      exec: ['/bin/sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'],
      editManifest: (m) => {
        (m.app as Record<string, unknown>).ports = [{ name: 'http', protocol: 'tcp', port: 80 }, { name: 'dns', protocol: 'udp', port: 53 }];
        return m;
      },
    });
    assertOk(await rkt(env, ['--insecure-options=image', 'fetch', img.path]), 'fetch');
    mkdirSync(join(env.localConfig, 'net.d'), { recursive: true });
    mkdirSync(join(env.userConfig, 'net.d'), { recursive: true });
    const netd = (name: string, conf: Record<string, unknown>) => writeFileSync(join(env.localConfig, 'net.d', name), JSON.stringify(conf));
    netd('10-rkttest-br.conf', { cniVersion: '0.4.0', name: 'rkttest-br', type: 'bridge', bridge: 'rkttestbr0', isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet: '10.231.0.0/24' } });
    netd('20-rkttest-v6.conf', { cniVersion: '0.4.0', name: 'rkttest-v6', type: 'ptp', ipam: { type: 'host-local', ranges: [[{ subnet: '10.233.0.0/24' }], [{ subnet: 'fd52:7c9e:1a2b::/64' }]] } });
    netd('30-rkttest-dns.conf', { cniVersion: '0.4.0', name: 'rkttest-dns', type: 'ptp', dns: { nameservers: ['10.234.0.53'], search: ['cni.example'] }, ipam: { type: 'host-local', subnet: '10.234.0.0/24' } });
    netd('zz-rkttest-tiny.conf', { cniVersion: '0.4.0', name: 'rkttest-tiny', type: 'ptp', ipam: { type: 'host-local', ranges: [[{ subnet: '10.235.0.0/24', rangeStart: '10.235.0.10', rangeEnd: '10.235.0.10' }]] } });
    netd('40-rkttest-mac.conf', { cniVersion: '0.4.0', name: 'rkttest-mac', type: 'macvlan', master: MASTER, mode: 'bridge', ipam: { type: 'static', addresses: [{ address: '10.236.0.5/24' }] } });
    netd('41-rkttest-ipv.conf', { cniVersion: '0.4.0', name: 'rkttest-ipv', type: 'ipvlan', master: MASTER, ipam: { type: 'host-local', subnet: '10.237.0.0/24' } });
    netd('50-rkttest-noplugin.conf', { cniVersion: '0.4.0', name: 'rkttest-noplugin', type: 'rkt-no-such-plugin' });
    // A master for macvlan/ipvlan (no dummy module here): one end of a veth pair.
    sh(`ip link add ${MASTER} type veth peer name ${MASTER}p && ip link set ${MASTER} up && ip link set ${MASTER}p up`);
    // Not every kernel has ipvlan (this one may not): probe it.
    hasIpvlan = has('ip', ['link', 'add', 'link', MASTER, 'name', 'rkttestipv', 'type', 'ipvlan', 'mode', 'l2']);
    if (hasIpvlan) sh('ip link del rkttestipv');
    // A free host port for forwarding.
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    port = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await rkt(env, ['gc', '--grace-period=0s']);
    env.cleanup();
    sh(`ip link del ${MASTER} 2>/dev/null; ip link del rkttestbr0 2>/dev/null`);
    for (const n of TEST_NETS) if (!ipamBefore.has(n)) rmSync(join(IPAM, n), { recursive: true, force: true });
    for (const [s, v] of sysctls) writeFileSync(s, v);
    await assertNoLeaks(before0, 10_000);
  });

  const run = (args: string[], app: string[] = []) => rkt(env, ['run', ...args, IMG, ...app], { timeout: 60_000 });
  const runSh = (args: string[], script: string) => run(args, ['--exec=/bin/sh', '--', '-c', script]);

  /** Starts a long-running pod; returns its uuid once ready, and the child. */
  async function startPod(args: string[], name: string): Promise<{ uuid: string; child: ChildProcess; exited: Promise<number | null> }> {
    const uuidFile = join(env.work, `uuid-${name}`);
    const child = spawn(RKT_BIN, [...env.globalArgs, 'run', `--uuid-file-save=${uuidFile}`, ...args, IMG], { stdio: 'ignore' });
    children.push(child);
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    let uuid = '';
    for (let i = 0; i < 150 && !uuid; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (existsSync(uuidFile)) uuid = readFileSync(uuidFile, 'utf8').trim();
    }
    assert.ok(uuid, `pod ${name} started`);
    assertOk(await rkt(env, ['status', '--wait-ready=20s', uuid]));
    return { uuid, child, exited };
  }

  async function stopPod(p: { uuid: string; exited: Promise<number | null> }): Promise<void> {
    await rkt(env, ['stop', p.uuid]);
    await p.exited;
  }

  const ipOf = async (uuid: string, net = 'default'): Promise<string> => {
    const st = assertOk(await rkt(env, ['status', uuid])).stdout;
    const m = new RegExp(`${net}:ip4=([0-9.]+)`).exec(st);
    assert.ok(m, `no ${net} address in status:\n${st}`);
    return m[1] as string;
  };

  test('none has only lo; host sees the host interfaces', async () => {
    const none = await runSh(['--net=none'], 'ls /sys/class/net');
    assert.equal(none.code, 0, describeRun(none));
    assert.deepEqual(none.stdout.trim().split(/\s+/), ['lo']);
    // Pods' host-side veths come and go (other tests run pods meanwhile): compare the others.
    const stable = (l: string[]) => l.filter((n) => !n.startsWith('veth')).sort();
    const host = await runSh(['--net=host'], 'ls /sys/class/net');
    assert.equal(host.code, 0, describeRun(host));
    assert.deepEqual(stable(host.stdout.trim().split(/\s+/)), stable(readdirSync('/sys/class/net')));
  });

  test('default: eth0 on 172.16.28.0/24 with a default route; state in list, status, JSON; teardown at exit', async () => {
    const uuidFile = join(env.work, 'uuid-default');
    const r = await run([`--uuid-file-save=${uuidFile}`], ['--exec=/bin/sh', '--', '-c', 'ip -4 -o addr show eth0; ip route; ip link show lo']);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /eth0\s+inet 172\.16\.28\.\d+\/24/);
    assert.match(r.stdout, /^default via 172\.16\.28\.1 dev eth0/m);
    assert.match(r.stdout, /lo: <LOOPBACK,UP/);
    // The same through runc (the network gate starts a created container differently per runtime).
    const viaRunc = await run(['--oci-runtime=runc'], ['--exec=/bin/sh', '--', '-c', 'ip -4 -o addr show eth0']);
    assert.equal(viaRunc.code, 0, describeRun(viaRunc));
    assert.match(viaRunc.stdout, /eth0\s+inet 172\.16\.28\.\d+\/24/);
    const uuid = readFileSync(uuidFile, 'utf8').trim();
    const ip = /inet (172\.16\.28\.\d+)/.exec(r.stdout)?.[1];
    const st = assertOk(await rkt(env, ['status', uuid])).stdout;
    assert.match(st, new RegExp(`^networks=default:ip4=${ip?.replace(/\./g, '\\.')}$`, 'm'));
    const list = assertOk(await rkt(env, ['list', '--no-legend'])).stdout;
    assert.match(list, new RegExp(`^${uuid.slice(0, 8)}\\t.*\\tdefault:ip4=${ip?.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(assertOk(await rkt(env, ['list'])).stdout, /\tNETWORKS\n/);
    const json = JSON.parse(assertOk(await rkt(env, ['status', '--format=json', uuid])).stdout) as { networks: Record<string, string>[] };
    assert.deepEqual(Object.keys(json.networks[0] ?? {}).sort(), ['args', 'ifName', 'ip', 'mask', 'netConf', 'netName', 'pluginPath']);
    assert.equal(json.networks[0]?.netName, 'default');
    assert.equal(json.networks[0]?.ifName, 'eth0');
    assert.equal(json.networks[0]?.ip, ip);
    assert.equal(json.networks[0]?.mask, '255.255.255.0');
    const listJson = JSON.parse(assertOk(await rkt(env, ['list', '--format=json'])).stdout) as { name: string; networks: unknown[] }[];
    assert.equal(listJson.find((p) => p.name === uuid)?.networks.length, 1);
    const dir = join(env.dir, 'pods', 'run', uuid);
    assert.ok(existsSync(join(dir, 'net-info.json')) && existsSync(join(dir, 'netns')));
    // The monitor's detached cleanup tears the network down without gc.
    for (let i = 0; i < 100 && netnsList().includes(`rkt-${uuid}`); i++) await new Promise((res) => setTimeout(res, 100));
    assert.ok(!netnsList().includes(`rkt-${uuid}`), 'netns removed at exit');
    assert.ok(!sh('iptables-save -t nat').includes(uuid), 'iptables rules removed at exit');
    assert.ok(!ipamFiles('default').includes(ip as string), 'address released at exit');
  });

  test('default-restricted: host-only, no default route; added when default is not asked for', async () => {
    const r = await runSh(['--net=default-restricted'], 'ip -4 -o addr show eth0; ip route');
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /inet 172\.31\.\d+\.\d+\/16/);
    assert.doesNotMatch(r.stdout, /^default/m);
    const two = await runSh(['--net=rkttest-br'], 'ip -4 -o addr');
    assert.equal(two.code, 0, describeRun(two));
    assert.match(two.stdout, /eth0\s+inet 10\.231\.0\.\d+\/24/);
    assert.match(two.stdout, /eth1\s+inet 172\.31\.\d+\.\d+\/16/);
  });

  test('two pods on default reach each other; a forwarded port answers on 127.0.0.1 and the host address', async () => {
    const a = await startPod([`--port=http:${port}`], 'a');
    try {
      const ipA = await ipOf(a.uuid);
      const b = await runSh([], `timeout 5 wget -q -O - http://${ipA}/`);
      assert.equal(b.code, 0, describeRun(b));
      assert.equal(b.stdout.trim(), `hello from rkt-${a.uuid}`);
      assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).trim(), `hello from rkt-${a.uuid}`);
      const info = JSON.parse(readFileSync(join(env.dir, 'pods', 'run', a.uuid, 'net-info.json'), 'utf8')) as { gateway: string }[];
      assert.equal(info[0]?.gateway, '172.16.28.1');
      assert.equal((await httpGet(`http://172.16.28.1:${port}/`)).trim(), `hello from rkt-${a.uuid}`);
      // The same host port again: refused before anything is set up.
      const ns0 = netnsList();
      const ipt0 = sh('iptables-save -t nat');
      assertRktError(await run([`--port=http:${port}`]), /host port .* already forwarded/);
      assert.deepEqual(await orphans(ns0, ipt0), []);
    } finally {
      await stopPod(a);
    }
  });

  test('user networks: several at once in file order, CNI args, bridge, macvlan with static IPAM, ipvlan, IPv6', async () => {
    const r = await runSh(['--net=default:IP=172.16.28.242,rkttest-br'], 'ip -4 -o addr');
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /eth0\s+inet 10\.231\.0\.\d+\/24/);
    assert.match(r.stdout, /eth1\s+inet 172\.16\.28\.242\/24/);
    const mac = await runSh([hasIpvlan ? '--net=rkttest-mac,rkttest-ipv' : '--net=rkttest-mac'], 'ip -4 -o addr');
    assert.equal(mac.code, 0, describeRun(mac));
    assert.match(mac.stdout, /eth0\s+inet 10\.236\.0\.5\/24/);
    if (hasIpvlan) assert.match(mac.stdout, /eth1\s+inet 10\.237\.0\.\d+\/24/);
    else console.log('# ipvlan not supported by this kernel: skipped');
    const v6 = await runSh(['--net=rkttest-v6'], 'ip -6 -o addr show eth0');
    assert.equal(v6.code, 0, describeRun(v6));
    assert.match(v6.stdout, /inet6 fd52:7c9e:1a2b::[0-9a-f]+\/64/);
  });

  test('a user net.d file overrides a built-in network by name', async () => {
    const f = join(env.userConfig, 'net.d', '99-default.conf');
    writeFileSync(f, JSON.stringify({ cniVersion: '0.4.0', name: 'default', type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '10.238.0.0/24', routes: [{ dst: '0.0.0.0/0' }] } }));
    try {
      const r = await runSh([], 'ip -4 -o addr show eth0');
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stdout, /inet 10\.238\.0\.\d+\/24/);
    } finally {
      rmSync(f);
    }
  });

  test('DNS and hosts flags, DNS from CNI, rkt precedence', async () => {
    const r = await runSh(['--dns=10.1.1.1', '--dns=10.1.1.2', '--dns-search=a.example', '--dns-opt=ndots:2', '--dns-domain=corp.example', '--hosts-entry=10.2.2.2=db,cache', '--hosts-entry=10.2.2.2=db2', '--hostname=podhost'], 'cat /etc/resolv.conf; echo ---; cat /etc/hosts');
    assert.equal(r.code, 0, describeRun(r));
    const [resolv, hosts] = r.stdout.split('---\n') as [string, string];
    assert.equal(resolv, '# Generated by rkt run\nsearch a.example\nnameserver 10.1.1.1\nnameserver 10.1.1.2\noptions ndots:2\ndomain corp.example\n');
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost .* podhost$/m);
    assert.match(hosts, /^10\.2\.2\.2\tdb cache db2$/m);
    const cni = await runSh(['--net=rkttest-dns'], 'cat /etc/resolv.conf');
    assert.equal(cni.code, 0, describeRun(cni));
    assert.match(cni.stdout, /search cni\.example\nnameserver 10\.234\.0\.53/);
    const flagsWin = await runSh(['--net=rkttest-dns', '--dns=10.9.9.9'], 'cat /etc/resolv.conf');
    assert.match(flagsWin.stdout, /nameserver 10\.9\.9\.9/);
    assert.doesNotMatch(flagsWin.stdout, /10\.234\.0\.53/);
    const none = await runSh(['--net=rkttest-dns', '--dns=none'], 'cat /etc/resolv.conf 2>/dev/null || echo no-resolv');
    assert.match(none.stdout, /no-resolv/);
    const host = await runSh(['--dns=host', '--hosts-entry=host'], 'cat /etc/resolv.conf; echo ---; cat /etc/hosts');
    assert.equal(host.code, 0, describeRun(host));
    const hostResolv = existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '';
    assert.equal(host.stdout, `${hostResolv}---\n${readFileSync('/etc/hosts', 'utf8')}`);
  });

  test('run-prepared takes --net with CNI args, --port and DNS flags', async () => {
    const p = assertOk(await rkt(env, ['prepare', '--quiet', IMG, '--exec=/bin/sh', '--', '-c', 'ip -4 -o addr show eth0; cat /etc/resolv.conf']));
    const uuid = p.stdout.trim();
    const r = await rkt(env, ['run-prepared', '--net=default:IP=172.16.28.243', '--dns=10.3.3.3', uuid], { timeout: 60_000 });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /inet 172\.16\.28\.243\/24/);
    assert.match(r.stdout, /nameserver 10\.3\.3\.3/);
    // --port on run-prepared: the image's httpd, reached through 127.0.0.1.
    const p2 = assertOk(await rkt(env, ['prepare', '--quiet', IMG])).stdout.trim();
    const child = spawn(RKT_BIN, [...env.globalArgs, 'run-prepared', `--port=http:${port}`, p2], { stdio: 'ignore' });
    children.push(child);
    const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    try {
      assertOk(await rkt(env, ['status', '--wait-ready=20s', p2]));
      assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).trim(), `hello from rkt-${p2}`);
    } finally {
      await stopPod({ uuid: p2, exited });
    }
  });

  test('bad input: a clear error and nothing left half set up', async () => {
    const ns0 = netnsList();
    const ipt0 = sh('iptables-save -t nat');
    assertRktError(await run(['--net=nope']), /networks not found: nope/);
    assertRktError(await run(['--net=default,default']), /network "default" given more than once/);
    assertRktError(await run(['--net=host', '--port=http:1']), /--port needs a contained network/);
    assertRktError(await run(['--port=nope:18099']), /port name "nope" is not declared/);
    assertRktError(await run(['--net=rkttest-noplugin']), /CNI plugin "rkt-no-such-plugin" not found/);
    assertRktError(await run(['--dns=bogus']), /invalid --dns "bogus"/);
    assertRktError(await run(['--hosts-entry=nohost']), /invalid --hosts-entry/);
    const bad = join(env.userConfig, 'net.d', '60-bad.conf');
    writeFileSync(bad, '{"name": "bad", "type": ');
    try {
      assertRktError(await run([]), /malformed network configuration .*60-bad\.conf/);
    } finally {
      rmSync(bad);
    }
    // A host port a host process listens on.
    const srv: Server = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const taken = (srv.address() as { port: number }).port;
    try {
      assertRktError(await run([`--port=http:${taken}`]), new RegExp(`host port ${taken}/tcp is already in use`));
    } finally {
      await new Promise((r) => srv.close(r));
    }
    // An exhausted range: the first pod holds the only address; the second rolls default back too.
    const holder = await startPod(['--net=rkttest-tiny'], 'tiny');
    try {
      const r = await run(['--net=default,rkttest-tiny']);
      assertRktError(r, /network "rkttest-tiny": .*no IP addresses available/);
      assert.deepEqual(await orphans(ns0, ipt0), []);
    } finally {
      await stopPod(holder);
    }
    assert.deepEqual(await orphans(ns0, ipt0), []);
  });

  test('a SIGKILLed monitor: gc tears the network down', async () => {
    const p = await startPod([`--port=http:${port}`], 'killed');
    const ip = await ipOf(p.uuid);
    p.child.kill('SIGKILL');
    await p.exited;
    assert.match(assertOk(await rkt(env, ['status', p.uuid])).stdout, /^state=exited$/m);
    assert.ok(netnsList().includes(`rkt-${p.uuid}`), 'netns still there before gc');
    assertOk(await rkt(env, ['gc', '--grace-period=0s']));
    assert.ok(!netnsList().includes(`rkt-${p.uuid}`));
    assert.ok(!sh('iptables-save -t nat').includes(p.uuid));
    assert.ok(!ipamFiles('default').includes(ip));
    // Again: idempotent.
    assertOk(await rkt(env, ['gc', '--grace-period=0s']));
  });

  test('rkt SIGKILLed in the middle of the network setup: gc removes what it did', async () => {
    const cni = join(env.work, 'cni');
    mkdirSync(cni, { recursive: true });
    writeFileSync(join(cni, 'rkttest-slow'), '#!/bin/sh\nsleep 2\necho \'{"code":100,"msg":"slow test plugin"}\'\nexit 1\n', { mode: 0o755 });
    const conf = join(env.localConfig, 'net.d', 'zz-rkttest-slow.conf');
    writeFileSync(conf, JSON.stringify({ cniVersion: '0.4.0', name: 'rkttest-slow', type: 'rkttest-slow' }));
    const ns0 = netnsList();
    const ipt0 = sh('iptables-save -t nat');
    const pending = join(env.dir, 'net', 'pending');
    try {
      const child = spawn(RKT_BIN, [...env.globalArgs, 'run', '--net=default,rkttest-slow', IMG], { stdio: 'ignore', env: { ...process.env, RKT_CNI_PATH: `${cni}:/usr/lib/cni` } });
      children.push(child);
      const exited = new Promise((r) => child.on('close', r));
      let uuid = '';
      for (let i = 0; i < 100 && !uuid; i++) {
        await new Promise((r) => setTimeout(r, 50));
        uuid = (existsSync(pending) ? readdirSync(pending) : [])[0] ?? '';
        if (uuid && !sh('ps -eo args').includes('rkttest-slow')) uuid = '';
      }
      assert.ok(uuid, 'the setup reached the slow plugin');
      child.kill('SIGKILL');
      await exited;
      assert.ok(netnsList().includes(`rkt-${uuid}`), 'the netns was made');
      await new Promise((r) => setTimeout(r, 2500));
      assertOk(await rkt(env, ['gc', '--grace-period=0s']));
      assert.ok(!netnsList().includes(`rkt-${uuid}`));
      assert.deepEqual(readdirSync(pending), []);
      assert.deepEqual(await orphans(ns0, ipt0), []);
      assert.deepEqual(ipamFiles('default').filter((f) => readFileSync(join(IPAM, 'default', f), 'utf8').startsWith(uuid)), []);
    } finally {
      rmSync(conf);
    }
  });

  test(`${RUNS} sequential pods leak no address, veth, netns or iptables rule`, { timeout: 600_000 }, async () => {
    const uuids: string[] = [];
    const t0 = Date.now();
    for (let i = 0; i < RUNS; i++) {
      const f = join(env.work, 'uuid-seq');
      const r = await rkt(env, ['run', `--uuid-file-save=${f}`, IMG, '--exec=/bin/true'], { timeout: 60_000 });
      assert.equal(r.code, 0, describeRun(r));
      uuids.push(readFileSync(f, 'utf8').trim());
    }
    console.log(`# ${RUNS} runs in ${Date.now() - t0} ms`);
    assertOk(await rkt(env, ['gc', '--grace-period=0s']));
    const mine = new Set(uuids);
    assert.deepEqual(netnsList().filter((n) => mine.has(n.slice(4))), [], 'netns left');
    const save = sh('iptables-save');
    assert.deepEqual(uuids.filter((u) => save.includes(u) || save.includes(u.replace(/-/g, '').slice(0, 12).toUpperCase())), [], 'iptables rules left');
    const held = ipamFiles('default').filter((f) => uuids.some((u) => readFileSync(join(IPAM, 'default', f), 'utf8').startsWith(u)));
    assert.deepEqual(held, [], 'addresses left');
    assert.deepEqual(sh('runc list -q').split('\n').filter((c) => uuids.some((u) => c.includes(u))), [], 'containers left');
    // Host veths of a pod die with its netns; the file's after() compares all host state (veths included).
  });
});
