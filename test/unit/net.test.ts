// Pure parts of networking: --net grammar, net.d parsing and selection, CNI
// results, resolv.conf / hosts generation, port flags and iptables rules.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chooseNets, loadNetConfs, parseNetConf, parseNetFlags, type NetSelection } from '../../src/net/config.ts';
import { cniErrorText, parseCniResult } from '../../src/net/cni.ts';
import { hostsContent, hostsMode, resolvConf, resolvMode, validateDns, NO_DNS } from '../../src/net/dns.ts';
import { checkPortRequests, cleanupRules, forwardedPorts, natRules, parsePortFlag, resolvePorts } from '../../src/net/ports.ts';
import { confSubnets, formatNetworks, netInfo, networkOf, teardownScript, type NetState } from '../../src/net/setup.ts';
import { spawnSync } from 'node:child_process';
import { etcMounts } from '../../src/net/pod.ts';

const contained = (s: NetSelection) => {
  assert.equal(s.kind, 'contained');
  return s as Extract<NetSelection, { kind: 'contained' }>;
};

test('--net grammar', () => {
  assert.deepEqual(parseNetFlags([]), { kind: 'contained', requests: [{ name: 'default', args: '' }], all: false });
  assert.deepEqual(parseNetFlags(['host']), { kind: 'host' });
  assert.deepEqual(parseNetFlags(['none']), { kind: 'none' });
  assert.deepEqual(contained(parseNetFlags(['default:IP=172.16.28.42;FOO=bar', 'mynet'])).requests, [
    { name: 'default', args: 'IP=172.16.28.42;FOO=bar' },
    { name: 'mynet', args: '' },
  ]);
  assert.equal(contained(parseNetFlags(['all'])).all, true);
  assert.throws(() => parseNetFlags(['a,b', 'a']), /network "a" given more than once/);
  assert.throws(() => parseNetFlags(['host,default']), /cannot be combined/);
  assert.throws(() => parseNetFlags(['none', 'x']), /cannot be combined/);
  assert.throws(() => parseNetFlags(['host:X=1']), /takes no arguments/);
  assert.throws(() => parseNetFlags(['default:IP']), /invalid CNI argument "IP"/);
  assert.throws(() => parseNetFlags([':X=1']), /empty network name/);
});

test('net.d parsing', () => {
  const c = parseNetConf('{"name":"br","type":"bridge","ipMasq":true,"ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}', '/x/net.d/10-br.conf');
  assert.equal(c.name, 'br');
  assert.equal(c.order, '10-br.conf');
  assert.equal(c.conf.cniVersion, '0.4.0');
  assert.throws(() => parseNetConf('{"name":"x",', 'f.conf'), /malformed network configuration f\.conf/);
  assert.throws(() => parseNetConf('[]', 'f.conf'), /not a JSON object/);
  assert.throws(() => parseNetConf('{"type":"ptp"}', 'f.conf'), /"name"/);
  assert.throws(() => parseNetConf('{"name":"x"}', 'f.conf'), /"type"/);
  assert.throws(() => parseNetConf('{"name":"host","type":"ptp"}', 'f.conf'), /reserved/);
  assert.throws(() => parseNetConf('{"name":"x","type":"../evil"}', 'f.conf'), /"type"/);
  assert.throws(() => parseNetConf('{"name":"x","type":"ptp","ipam":"nope"}', 'f.conf'), /"ipam"/);
  assert.throws(() => parseNetConf('{"name":"x","type":"ptp","ipMasq":"yes"}', 'f.conf'), /ipMasq/);
});

test('network selection: overrides, file order, default-restricted, all', () => {
  const base = mkdtempSync(join(tmpdir(), 'rkt-net-unit-'));
  try {
    const local = join(base, 'local');
    const user = join(base, 'user');
    mkdirSync(join(local, 'net.d'), { recursive: true });
    mkdirSync(join(user, 'net.d'), { recursive: true });
    writeFileSync(join(local, 'net.d', '10-a.conf'), '{"name":"a","type":"bridge"}');
    writeFileSync(join(local, 'net.d', '50-b.conf'), '{"name":"b","type":"ptp"}');
    writeFileSync(join(local, 'net.d', 'README'), 'not a conf');
    writeFileSync(join(user, 'net.d', '05-default.conf'), '{"name":"default","type":"ptp","ipam":{"type":"host-local","subnet":"10.9.0.0/24"}}');
    const confs = loadNetConfs([local, user]);
    assert.equal(confs.get('default')?.file, join(user, 'net.d', '05-default.conf'));
    assert.equal(confs.get('default-restricted')?.file, 'builtin:99-default-restricted.conf');
    const two = chooseNets(contained(parseNetFlags(['b,a'])), confs);
    assert.deepEqual(two.map((n) => [n.net.name, n.ifName]), [['a', 'eth0'], ['b', 'eth1'], ['default-restricted', 'eth2']]);
    const withDefault = chooseNets(contained(parseNetFlags(['b,default:IP=10.9.0.7'])), confs);
    assert.deepEqual(withDefault.map((n) => [n.net.name, n.ifName, n.args]), [['default', 'eth0', 'IP=10.9.0.7'], ['b', 'eth1', '']]);
    const all = chooseNets(contained(parseNetFlags(['all'])), confs);
    assert.deepEqual(all.map((n) => n.net.name), ['default', 'a', 'b']);
    assert.throws(() => chooseNets(contained(parseNetFlags(['nope,zip'])), confs), /networks not found: nope, zip/);
    writeFileSync(join(local, 'net.d', '60-b2.conf'), '{"name":"b","type":"ptp"}');
    assert.throws(() => loadNetConfs([local]), /network "b" is defined twice/);
    rmSync(join(local, 'net.d', '60-b2.conf'));
    writeFileSync(join(local, 'net.d', '70-bad.conf'), '{');
    assert.throws(() => loadNetConfs([local]), /malformed network configuration .*70-bad\.conf/);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('CNI results of every version', () => {
  const v4 = parseCniResult(JSON.stringify({
    cniVersion: '0.4.0',
    interfaces: [{ name: 'veth1', mac: 'aa' }, { name: 'eth0', sandbox: '/var/run/netns/x' }],
    ips: [{ version: '4', interface: 1, address: '172.16.28.5/24', gateway: '172.16.28.1' }, { version: '6', address: 'fd00::5/64' }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: ['10.0.0.53'], search: ['a.example'], options: ['ndots:2'], domain: 'example' },
  }));
  assert.equal(v4.ips.length, 2);
  assert.equal(v4.ips[1]?.version, '6');
  assert.deepEqual(v4.dns, { nameservers: ['10.0.0.53'], domain: 'example', search: ['a.example'], options: ['ndots:2'] });
  assert.equal(v4.interfaces[1]?.sandbox, '/var/run/netns/x');
  const v1 = parseCniResult(JSON.stringify({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/8' }] }));
  assert.equal(v1.ips[0]?.version, '4');
  const old = parseCniResult(JSON.stringify({ ip4: { ip: '10.1.0.2/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] }, ip6: { ip: 'fd00::2/64' } }));
  assert.deepEqual(old.ips.map((i) => [i.version, i.address]), [['4', '10.1.0.2/16'], ['6', 'fd00::2/64']]);
  assert.deepEqual(old.routes, [{ dst: '0.0.0.0/0' }]);
  assert.throws(() => parseCniResult('nope'), /invalid JSON/);
  assert.equal(cniErrorText('{"code":11,"msg":"failed to allocate","details":"no IP addresses available"}', ''), 'failed to allocate: no IP addresses available');
  assert.equal(cniErrorText('', 'line1\nboom\n'), 'boom');
});

test('net-info, NETWORKS column, subnets', () => {
  const s: NetState = {
    uuid: 'u',
    netns: '/var/run/netns/rkt-u',
    forwards: [],
    families: [4],
    networks: [
      { netName: 'default', netConf: 'builtin:99-default.conf', pluginPath: '/usr/lib/cni/ptp', ifName: 'eth0', args: '', conf: {}, ipMasq: true, result: parseCniResult('{"ips":[{"version":"4","address":"172.16.28.9/24","gateway":"172.16.28.1"}]}') },
      { netName: 'v6', netConf: '/n/v6.conf', pluginPath: '/usr/lib/cni/ptp', ifName: 'eth1', args: 'X=1', conf: {}, ipMasq: false, result: parseCniResult('{"ips":[{"version":"4","address":"10.0.0.2/16"},{"version":"6","address":"fd00::2/64"}]}') },
      { netName: 'failed', netConf: 'x', pluginPath: 'x', ifName: 'eth2', args: '', conf: {}, ipMasq: false },
    ],
  };
  const info = netInfo(s);
  assert.equal(info.length, 2);
  assert.deepEqual(info[0], { netName: 'default', netConf: 'builtin:99-default.conf', pluginPath: '/usr/lib/cni/ptp', ifName: 'eth0', ip: '172.16.28.9', args: '', mask: '255.255.255.0', gateway: '172.16.28.1' });
  assert.equal(info[1]?.mask, '255.255.0.0');
  assert.equal(formatNetworks(info), 'default:ip4=172.16.28.9, v6:ip4=10.0.0.2, v6:ip6=fd00::2');
  assert.equal(networkOf('172.16.28.9/24'), '172.16.28.0/24');
  assert.equal(networkOf('10.1.2.3/8'), '10.0.0.0/8');
  assert.equal(networkOf('fd00:1:2:3::5/64'), 'fd00:1:2:3:0:0:0:0/64');
  assert.deepEqual(confSubnets({ ipam: { type: 'host-local', subnet: '172.16.28.0/24' } }), ['172.16.28.0/24']);
  assert.deepEqual(confSubnets({ ipam: { type: 'host-local', ranges: [[{ subnet: '10.1.2.0/24' }], [{ subnet: 'fd00::/64' }]] } }), ['10.1.2.0/24', 'fd00:0:0:0:0:0:0:0/64']);
  assert.deepEqual(confSubnets({ ipam: { type: 'static', addresses: [{ address: '10.3.0.5/16' }] } }), ['10.3.0.0/16']);
  assert.equal(confSubnets({ ipam: { type: 'dhcp' } }), undefined);
});

test('resolv.conf and hosts with rkt precedence', () => {
  assert.equal(resolvConf(['1.1.1.1', '8.8.8.8'], ['a.example', 'b.example'], ['ndots:3'], 'corp'), '# Generated by rkt run\nsearch a.example b.example\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:3\ndomain corp\n');
  const cni = { nameservers: ['10.0.0.53'], search: [], options: [], domain: undefined };
  assert.deepEqual(resolvMode(NO_DNS, undefined), { kind: 'image' });
  assert.match((resolvMode(NO_DNS, cni) as { content: string }).content, /nameserver 10\.0\.0\.53/);
  assert.match((resolvMode({ ...NO_DNS, servers: ['9.9.9.9'] }, cni) as { content: string }).content, /^# Generated by rkt run\nnameserver 9\.9\.9\.9\n$/);
  assert.deepEqual(resolvMode({ ...NO_DNS, servers: ['none'] }, cni), { kind: 'image' });
  assert.deepEqual(resolvMode({ ...NO_DNS, servers: ['host'] }, cni), { kind: 'host' });
  assert.match((resolvMode({ ...NO_DNS, search: ['x.example'] }, undefined) as { content: string }).content, /search x\.example/);
  assert.throws(() => validateDns({ ...NO_DNS, servers: ['host', '1.1.1.1'] }), /cannot be combined/);
  assert.throws(() => validateDns({ ...NO_DNS, servers: ['not-an-ip'] }), /invalid --dns/);
  assert.throws(() => validateDns({ ...NO_DNS, hostsEntries: ['1.2.3.4'] }), /invalid --hosts-entry/);
  assert.throws(() => validateDns({ ...NO_DNS, hostsEntries: ['host', '1.2.3.4=a'] }), /cannot be combined/);
  assert.equal(
    hostsContent('rkt-x', ['10.0.0.1=db,cache', '10.0.0.1=db2', '127.0.0.1=me']),
    '127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4 rkt-x me\n::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n10.0.0.1\tdb cache db2\n',
  );
  const stub = hostsMode(NO_DNS, 'h');
  const entries = hostsMode({ ...NO_DNS, hostsEntries: ['1.2.3.4=a'] }, 'h');
  // The stub only where neither image nor volume has the file; entries win over both (mounted after volumes).
  assert.deepEqual(etcMounts('/p', { hosts: stub, resolv: { kind: 'image' } }, { imageHasHosts: true, mounts: [] }), { before: [], after: [] });
  assert.equal(etcMounts('/p', { hosts: stub, resolv: { kind: 'image' } }, { imageHasHosts: false, mounts: [{ destination: '/etc/hosts' }] }).before.length, 0);
  assert.equal(etcMounts('/p', { hosts: stub, resolv: { kind: 'image' } }, { imageHasHosts: false, mounts: [] }).before[0]?.source, '/p/hosts');
  const win = etcMounts('/p', { hosts: entries, resolv: { kind: 'generated', content: '' } }, { imageHasHosts: true, mounts: [{ destination: '/etc/hosts' }] });
  assert.deepEqual(win.after.map((m) => [m.destination, m.source]), [['/etc/hosts', '/p/hosts'], ['/etc/resolv.conf', '/p/resolv.conf']]);
  const host = etcMounts('/p', { hosts: { kind: 'host' }, resolv: { kind: 'host' } }, { imageHasHosts: false, mounts: [] });
  assert.deepEqual(host.after.map((m) => [m.source, m.options]), [['/etc/hosts', ['bind', 'ro']], ['/etc/resolv.conf', ['bind', 'ro']]]);
});

test('--port and iptables rules', () => {
  assert.deepEqual(parsePortFlag('http:8080'), { name: 'http', hostIp: '', hostPort: 8080 });
  assert.deepEqual(parsePortFlag('80-tcp:127.0.0.1:8080'), { name: '80-tcp', hostIp: '127.0.0.1', hostPort: 8080 });
  assert.throws(() => parsePortFlag('http'), /NAME:\[HOSTIP:\]HOSTPORT/);
  assert.throws(() => parsePortFlag('http:0'), /1-65535/);
  assert.throws(() => parsePortFlag('http:x:80'), /IPv4/);
  assert.throws(() => checkPortRequests([parsePortFlag('a:80'), parsePortFlag('a:81')]), /forwarded twice/);
  assert.throws(() => checkPortRequests([parsePortFlag('a:80'), parsePortFlag('b:127.0.0.1:80')]), /given twice/);
  const fw = resolvePorts([parsePortFlag('http:8080')], [{ name: 'http', protocol: 'tcp', port: 80 }]);
  assert.deepEqual(fw, [{ name: 'http', protocol: 'tcp', podPort: 80, hostIp: '', hostPort: 8080 }]);
  assert.throws(() => resolvePorts([parsePortFlag('nope:1')], [{ name: 'http', protocol: 'tcp', port: 80 }]), /port name "nope" is not declared/);
  const uuid = '0123abcd-4567-89ef-0123-456789abcdef';
  const rules = natRules(uuid, 4, [{ source: '172.16.28.5', subnet: '172.16.28.0/24', index: 0 }], fw, '172.16.28.5');
  assert.match(rules, /^\*nat\n:RKT-MASQ-0123ABCD4567-0 - \[0:0\]\n/);
  assert.match(rules, /-A RKT-PFWD-DNAT-0123ABCD4567 -p tcp -m tcp --dport 8080 -m comment --comment "rkt:0123abcd-4567-89ef-0123-456789abcdef" -j DNAT --to-destination 172\.16\.28\.5:80/);
  assert.match(rules, /-A RKT-PFWD-SNAT-0123ABCD4567 -s 127\.0\.0\.0\/8 -d 172\.16\.28\.5\/32 -p tcp/);
  assert.match(rules, /COMMIT\n$/);
  assert.equal(natRules(uuid, 6, [], [], undefined), '');
  // What iptables-save prints back is removed exactly, with the chains.
  const save = ['*nat', ':PREROUTING ACCEPT [0:0]', ':RKT-MASQ-0123ABCD4567-0 - [0:0]', ':RKT-PFWD-DNAT-0123ABCD4567 - [0:0]', ':CNI-abc - [0:0]',
    `-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "rkt:${uuid}" -j RKT-PFWD-DNAT-0123ABCD4567`,
    `-A POSTROUTING -s 10.0.0.2/32 -m comment --comment "name: \\"x\\" id: \\"${uuid}\\"" -j CNI-abc`,
    '-A POSTROUTING -s 10.0.0.3/32 -m comment --comment "rkt:someone-else" -j RKT-MASQ-OTHER-0',
    `-A RKT-PFWD-DNAT-0123ABCD4567 -p tcp -m tcp --dport 8080 -m comment --comment "rkt:${uuid}" -j DNAT --to-destination 172.16.28.5:80`,
    'COMMIT'].join('\n');
  const clean = cleanupRules(save, uuid);
  assert.match(clean, /^\*nat\n-D PREROUTING -m addrtype/);
  assert.match(clean, /-D POSTROUTING -s 10\.0\.0\.2\/32/);
  assert.doesNotMatch(clean, /someone-else/);
  assert.match(clean, /-F RKT-PFWD-DNAT-0123ABCD4567\n/);
  assert.match(clean, /-X RKT-MASQ-0123ABCD4567-0\n/);
  assert.match(clean, /-X CNI-abc\n/);
  assert.doesNotMatch(clean, /-D RKT-PFWD-DNAT/);
  assert.equal(cleanupRules('*nat\nCOMMIT\n', uuid), '');
  assert.deepEqual([...forwardedPorts(save)], ['tcp/8080']);
});

test("the teardown script: DEL in reverse order, the pod's rules and chains, the netns", () => {
  const uuid = '0123abcd-4567-89ef-0123-456789abcdef';
  const st: NetState = {
    uuid,
    netns: `/var/run/netns/rkt-${uuid}`,
    forwards: [],
    families: [4],
    networks: [
      { netName: 'a', netConf: 'x', pluginPath: '/usr/lib/cni/ptp', ifName: 'eth0', args: "IP=1.2.3.4;X=it's", conf: { cniVersion: '0.4.0', name: 'a', type: 'ptp' }, ipMasq: true, rawResult: { cniVersion: '0.4.0', ips: [] } },
      { netName: 'b', netConf: 'y', pluginPath: '/usr/lib/cni/bridge', ifName: 'eth1', args: '', conf: { cniVersion: '0.3.1', name: 'b', type: 'bridge' }, ipMasq: false },
    ],
  };
  const script = teardownScript(st);
  assert.equal(spawnSync('sh', ['-n'], { input: script }).status, 0, 'valid sh');
  assert.ok(script.indexOf('/usr/lib/cni/bridge') < script.indexOf('/usr/lib/cni/ptp'), 'reverse order');
  assert.match(script, /CNI_ARGS='IP=1\.2\.3\.4;X=it'\\''s'/);
  assert.match(script, /"prevResult":\{"cniVersion":"0\.4\.0"/);
  assert.doesNotMatch(script.split('\n').find((l) => l.includes('"name":"b"')) ?? '', /prevResult/);
  // Its iptables filter, on what iptables-save prints.
  const awk = (script.split('\n').find((l) => l.startsWith('iptables-save')) ?? '').replace(/^iptables-save -t nat \| /, '').replace(/ \| iptables-restore.*$/, '');
  const save = ['*nat', ':PREROUTING ACCEPT [0:0]', ':RKT-MASQ-0123ABCD4567-0 - [0:0]', ':RKT-MASQ-OTHER-0 - [0:0]',
    `-A POSTROUTING -s 172.16.28.0/24 -m comment --comment "rkt:${uuid}" -j RKT-MASQ-0123ABCD4567-0`,
    '-A POSTROUTING -s 10.0.0.3/32 -m comment --comment "rkt:someone-else" -j RKT-MASQ-OTHER-0',
    `-A RKT-MASQ-0123ABCD4567-0 -d 172.16.28.0/24 -m comment --comment "rkt:${uuid}" -j ACCEPT`, 'COMMIT', ''].join('\n');
  const r = spawnSync('sh', ['-c', awk], { input: save, encoding: 'utf8' });
  assert.equal(r.stdout, `*nat\n-D POSTROUTING -s 172.16.28.0/24 -m comment --comment "rkt:${uuid}" -j RKT-MASQ-0123ABCD4567-0\n-F RKT-MASQ-0123ABCD4567-0\n-X RKT-MASQ-0123ABCD4567-0\nCOMMIT\n`);
  assert.match(script, /ip netns delete 'rkt-0123abcd-4567-89ef-0123-456789abcdef'/);
});
