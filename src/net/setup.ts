// A pod's networks, end to end: a named network namespace
// (/var/run/netns/rkt-<uuid>), CNI ADD for each network in file order, IP
// masquerade and port forwards through one iptables-restore, the results in
// the pod dir (`netns`, `net-info.json`, `net-state.json`); and the
// idempotent teardown run when the pod exits and again by gc/rm.
//
// Start-up speed: `rkt run` starts the setup (netns + ADD) as soon as its
// flags are parsed, in child processes running while the images are
// resolved and the pod is prepared; it waits for it just before launching.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RktError } from '../lib/errors.ts';
import { formatProcId, isAlive, parseProcId, selfId } from '../lib/proc.ts';
import { launcherSpawn } from '../lib/handoff.ts';
import { debug, debugAt } from '../lib/log.ts';
import { cniErrorText, cniPath, findPlugin, invokeSync, parseCniResult, type CniResult } from './cni.ts';
import type { ChosenNet } from './config.ts';
import { chainId, natRules, removePodRules, restoreAsync, checkHostPorts, type MasqRule, type PortForward } from './ports.ts';
import { childProcess } from '../lib/builtins.ts';

export const NETNS_DIR = '/var/run/netns';
export const IPAM_DIR = '/var/lib/cni/networks';

export function netnsName(uuid: string): string {
  return `rkt-${uuid}`;
}

export interface NetRecord {
  netName: string;
  netConf: string;
  pluginPath: string;
  ifName: string;
  args: string;
  /** The configuration as given to the plugin (ipMasq removed: rkt applies it). */
  conf: Record<string, unknown>;
  ipMasq: boolean;
  /** The masquerade rules were added before the ADD, for the network's whole subnet. */
  masqBySubnet?: boolean;
  result?: CniResult | undefined;
  /** The plugin's raw result, passed back as prevResult on DEL (CNI >= 0.4.0). */
  rawResult?: Record<string, unknown> | undefined;
}

export interface NetState {
  uuid: string;
  netns: string;
  networks: NetRecord[];
  forwards: PortForward[];
  /** Address families rkt wrote iptables rules for. */
  families: (4 | 6)[];
}

/** What `rkt list`/`status` and the JSON formats show (rkt's net-info.json). */
export interface NetInfo {
  netName: string;
  netConf: string;
  pluginPath: string;
  ifName: string;
  ip: string;
  args: string;
  mask: string;
  ip6?: string;
  gateway?: string;
}

function spawnAsync(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new RktError('NOT_FOUND', `networking: cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new RktError('STATE', `networking: ${cmd} ${args.join(' ')}: ${Buffer.concat(err).toString().trim()}`))));
  });
}

function prefixMask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

/** The network (CIDR) containing an address/prefix. Pure, IPv4 and IPv6. */
export function networkOf(cidr: string): string {
  const [ip, p] = cidr.split('/') as [string, string];
  const prefix = Number(p);
  if (!ip.includes(':')) {
    const n = ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
    const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const net = (n & m) >>> 0;
    return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${prefix}`;
  }
  const full = expand6(ip);
  let big = BigInt(`0x${full}`);
  const mask = prefix === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
  big &= mask;
  const hex = big.toString(16).padStart(32, '0');
  const groups = hex.match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, ''));
  return `${groups.join(':')}/${prefix}`;
}

function expand6(ip: string): string {
  const [a, b] = ip.split('::') as [string, string | undefined];
  const left = a ? a.split(':') : [];
  const right = b !== undefined && b !== '' ? b.split(':') : [];
  const fill = b === undefined ? [] : new Array(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => g.padStart(4, '0')).join('');
}

/** rkt's net-info.json entries from the state. Pure. */
export function netInfo(s: NetState): NetInfo[] {
  return s.networks.filter((n) => n.result).map((n) => {
    const r = n.result as CniResult;
    const v4 = r.ips.find((i) => i.version === '4');
    const v6 = r.ips.find((i) => i.version === '6');
    const [ip, prefix] = (v4?.address ?? '').split('/');
    return {
      netName: n.netName,
      netConf: n.netConf,
      pluginPath: n.pluginPath,
      ifName: n.ifName,
      ip: ip ?? '',
      args: n.args,
      mask: prefix ? prefixMask(Number(prefix)) : '',
      ...(v6 ? { ip6: v6.address.split('/')[0] as string } : {}),
      ...(v4?.gateway ? { gateway: v4.gateway } : {}),
    };
  });
}

/** `name:ip4=A.B.C.D` (and `name:ip6=…`), joined by ", " (rkt list/status). Pure. */
export function formatNetworks(infos: readonly NetInfo[]): string {
  return infos.flatMap((n) => [...(n.ip ? [`${n.netName}:ip4=${n.ip}`] : []), ...(n.ip6 ? [`${n.netName}:ip6=${n.ip6}`] : [])]).join(', ');
}

export function readNetInfo(podDir: string): NetInfo[] {
  const path = `${podDir}/net-info.json`;
  // Absent for pods without networks: no exception for those (`rkt list`).
  if (!existsSync(path)) return [];
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return Array.isArray(v) ? (v as NetInfo[]) : [];
  } catch {
    return [];
  }
}

function pluginFor(n: ChosenNet, path: readonly string[]): string {
  const p = findPlugin(n.net.type, path);
  if (!p) throw new RktError('NOT_FOUND', `networking: network "${n.net.name}": CNI plugin "${n.net.type}" not found in ${path.join(':')}`);
  const ipam = (n.net.conf.ipam as { type?: string } | undefined)?.type;
  if (ipam && !findPlugin(ipam, path)) throw new RktError('NOT_FOUND', `networking: network "${n.net.name}": CNI IPAM plugin "${ipam}" not found in ${path.join(':')}`);
  return p;
}

/** Checks everything that can be checked without side effects (plugins present). */
export function preflight(nets: readonly ChosenNet[]): void {
  const path = cniPath();
  for (const n of nets) pluginFor(n, path);
}

function withPrev(conf: Record<string, unknown>, prev: Record<string, unknown> | undefined): Record<string, unknown> {
  const v = String(conf.cniVersion ?? '0.1.0');
  const [maj, min] = v.split('.').map(Number) as [number, number];
  return prev && (maj > 0 || min >= 4) ? { ...conf, prevResult: prev } : conf;
}

const SEP = '--rkt-cni-result-end--';

/*
 * The whole chain (netns, lo up, ADD per network in order) runs in one
 * shell, so that it does not wait for Node's event loop, which is busy
 * preparing the pod meanwhile. Exit 90: netns not created; 91: lo; 93: rkt
 * is gone; 100+i:
 * ADD of network i failed. Each plugin's stdout is followed by SEP.
 */
const SETUP_SCRIPT = `
main() {
  if [ -n "$RKT_MASQ" ]; then printf '%s' "$RKT_MASQ" | iptables-restore -w --noflush & m=$!; else m=; fi
  ip netns add "$RKT_NS" || return 90
  ip -n "$RKT_NS" link set lo up &
  lo=$!
  i=0
  while [ "$i" -lt "$RKT_N" ]; do
    kill -0 "$RKT_PID" 2>/dev/null || return 93
    eval "conf=\\$RKT_CONF_$i plugin=\\$RKT_PLUGIN_$i ifname=\\$RKT_IF_$i args=\\$RKT_ARGS_$i"
    printf '%s' "$conf" | CNI_COMMAND=ADD CNI_IFNAME="$ifname" CNI_ARGS="$args" "$plugin"
    st=$?
    printf '\\n%s\\n' "$RKT_SEP"
    [ "$st" -eq 0 ] || return $((100 + i))
    i=$((i + 1))
  done
  wait "$lo" || return 91
  [ -z "$m" ] || wait "$m" || return 92
}
echo $$ >"$RKT_RC.pid"
main >"$RKT_OUT" 2>"$RKT_ERR"
rc=$?
echo "$rc" >"$RKT_RC"
exit "$rc"
`;

interface SetupFiles {
  out: string;
  err: string;
  rc: string;
}

function setupFiles(dataDir: string, uuid: string): SetupFiles {
  const base = join(dataDir, 'net', 'pending', uuid);
  return { out: `${base}.out`, err: `${base}.err`, rc: `${base}.rc` };
}

function readSetup(f: SetupFiles): { code: number; stdout: string; stderr: string } | undefined {
  let rc: string;
  try {
    rc = readFileSync(f.rc, 'utf8');
  } catch {
    return undefined;
  }
  // Written by one echo (no mv: an exec less before the pod can start): empty until complete.
  if (!/^\d+\n$/.test(rc)) return undefined;
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return { code: Number(rc.trim()), stdout: read(f.out), stderr: read(f.err) };
}

const SETUP_TIMEOUT_MS = 120_000;

function runSetupScript(env: NodeJS.ProcessEnv, f: SetupFiles): Promise<{ code: number; stdout: string; stderr: string }> {
  // Started by bin/rkt: the launcher forks the shell (well under 1 ms) while
  // Node goes on; its outcome comes through the result files either way.
  if (launcherSpawn('/bin/sh', ['/bin/sh', '-c', SETUP_SCRIPT], { ...env, RKT_OUT: f.out, RKT_ERR: f.err, RKT_RC: f.rc })) {
    return new Promise((resolve) => {
      const end = Date.now() + SETUP_TIMEOUT_MS;
      const tick = (): void => {
        const r = readSetup(f);
        if (r) return resolve(r);
        if (Date.now() <= end) return void setTimeout(tick, 2);
        killSetup(f);
        resolve({ code: 255, stdout: '', stderr: 'networking: the setup timed out' });
      };
      tick();
    });
  }
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn('/bin/sh', ['-c', SETUP_SCRIPT], { env: { ...env, RKT_OUT: f.out, RKT_ERR: f.err, RKT_RC: f.rc }, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), SETUP_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new RktError('NOT_FOUND', `networking: cannot run /bin/sh: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(readSetup(f) ?? { code: code ?? 255, stdout: '', stderr: '' });
    });
  });
}

/** A setup shell that took too long: killed (by the PID it wrote), if it is still one of ours. */
function killSetup(f: SetupFiles): void {
  try {
    const pid = Number(readFileSync(`${f.rc}.pid`, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('RKT_NS')) process.kill(pid, 'SIGKILL');
  } catch {
    /* gone already */
  }
}

/** Blocks (no event loop) until the setup shell is done; for the last step before execve. */
export function waitSetupSync(dataDir: string, uuid: string, timeoutMs = SETUP_TIMEOUT_MS): { code: number; stdout: string; stderr: string } {
  const f = setupFiles(dataDir, uuid);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = readSetup(f);
    if (r) return r;
    if (Date.now() > end) {
      killSetup(f);
      return { code: 255, stdout: '', stderr: 'timed out' };
    }
    Atomics.wait(cell, 0, 0, 2);
  }
}

/** The state before the ADD (what the shell is told to do), and its environment. */
export function setupPlan(uuid: string, nets: readonly ChosenNet[]): { state: NetState; env: NodeJS.ProcessEnv } {
  const path = cniPath();
  const state: NetState = { uuid, netns: join(NETNS_DIR, netnsName(uuid)), networks: [], forwards: [], families: [] };
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_CONTAINERID: uuid,
    CNI_NETNS: state.netns,
    CNI_PATH: path.join(':'),
    RKT_NS: netnsName(uuid),
    RKT_N: String(nets.length),
    RKT_SEP: SEP,
    // rkt killed meanwhile: stop (gc tears down what was done, see gcPendingNetworks).
    RKT_PID: String(selfId().pid),
  };
  nets.forEach((n, i) => {
    const plugin = pluginFor(n, path);
    const { ipMasq, ...conf } = n.net.conf;
    state.networks.push({ netName: n.net.name, netConf: n.net.file, pluginPath: plugin, ifName: n.ifName, args: n.args, conf, ipMasq: ipMasq === true });
    env[`RKT_CONF_${i}`] = JSON.stringify(conf);
    env[`RKT_PLUGIN_${i}`] = plugin;
    env[`RKT_IF_${i}`] = n.ifName;
    env[`RKT_ARGS_${i}`] = n.args;
  });
  env.RKT_MASQ = subnetMasqRules(state);
  return { state, env };
}

/** Reads the shell's outcome into the state; throws (the caller rolls back) on failure. */
export function processSetup(state: NetState, r: { code: number; stdout: string; stderr: string }): void {
  const uuid = state.uuid;
  const parts = r.stdout.split(`\n${SEP}\n`);
  if (r.code >= 100 && r.code < 100 + state.networks.length) {
    const i = r.code - 100;
    const n = state.networks[i] as NetRecord;
    state.networks = state.networks.slice(0, i + 1);
    throw new RktError('STATE', `networking: network "${n.netName}": ${cniErrorText(parts[i] ?? '', r.stderr)}`);
  }
  if (r.code === 92) throw new RktError('STATE', `networking: iptables-restore failed: ${r.stderr.trim()}`);
  if (r.code !== 0) throw new RktError('STATE', `networking: setting up network namespace ${netnsName(uuid)} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  state.networks.forEach((rec, i) => {
    const out = parts[i] ?? '';
    rec.result = parseCniResult(out);
    rec.rawResult = JSON.parse(out) as Record<string, unknown>;
    if (rec.result.ips.length === 0) debug(`network ${rec.netName} returned no IP address`);
  });
}

/** Creates the netns and runs CNI ADD for each network; rolls back everything on failure. */
export async function setupNetworks(state: NetState, env: NodeJS.ProcessEnv, dataDir: string): Promise<NetState> {
  const uuid = state.uuid;
  debugAt(`networking: setup of ${state.networks.map((n) => n.netName).join(', ')} started`);
  const r = await runSetupScript(env, setupFiles(dataDir, uuid));
  debugAt(`networking: CNI ADD done (exit ${r.code})`);
  // A netns that could not be created leaves nothing of ours (the name may belong to a racing run-prepared of the same pod).
  if (r.code === 90) throw new RktError('STATE', `networking: cannot create network namespace ${netnsName(uuid)}: ${r.stderr.trim()}`);
  try {
    processSetup(state, r);
    await applyRules(state, []);
    return state;
  } catch (e) {
    teardownState(state);
    throw e;
  }
}

/** The subnets a network's IPAM configuration hands addresses from (host-local, static); undefined if unknown. Pure. */
export function confSubnets(conf: Record<string, unknown>): string[] | undefined {
  const ipam = conf.ipam as { type?: string; subnet?: unknown; ranges?: unknown; addresses?: unknown } | undefined;
  const out: string[] = [];
  try {
    if (ipam?.type === 'host-local') {
      if (typeof ipam.subnet === 'string') out.push(networkOf(ipam.subnet));
      if (Array.isArray(ipam.ranges)) for (const set of ipam.ranges as { subnet?: string }[][]) for (const r of set) if (typeof r.subnet === 'string') out.push(networkOf(r.subnet));
    } else if (ipam?.type === 'static' && Array.isArray(ipam.addresses)) {
      for (const a of ipam.addresses as { address?: string }[]) if (typeof a.address === 'string') out.push(networkOf(a.address));
    }
  } catch {
    return undefined;
  }
  return out.length > 0 && out.every((c) => /^[0-9a-f.:]+\/\d+$/.test(c)) ? [...new Set(out)] : undefined;
}

/**
 * Masquerade rules that do not need the pod's address: `-s <subnet>` (the
 * same effect as the pod's own address, since every pod of the network gets
 * the same rule while it lives), so the setup shell adds them while the ADD
 * runs. IPv4 only there; the rest is added after the ADD (applyRules).
 */
function subnetMasqRules(s: NetState): string {
  const rules: MasqRule[] = [];
  s.networks.forEach((n, index) => {
    if (!n.ipMasq) return;
    const subnets = confSubnets(n.conf);
    if (!subnets || subnets.some((x) => x.includes(':'))) return;
    n.masqBySubnet = true;
    for (const sub of subnets) rules.push({ source: sub, subnet: sub, index });
  });
  const text = natRules(s.uuid, 4, rules, [], undefined);
  if (text && !s.families.includes(4)) s.families.push(4);
  return text;
}

/** True when every masquerade rule goes in with the ADD (nothing left for after it). */
export function masqAllBySubnet(s: NetState): boolean {
  return s.networks.every((n) => !n.ipMasq || n.masqBySubnet === true);
}

/** The network carrying port forwards: the first with IP masquerade, else the last (rkt). */
export function portNetwork(s: NetState): NetRecord | undefined {
  return s.networks.find((n) => n.ipMasq && n.result) ?? s.networks.filter((n) => n.result).at(-1);
}

async function applyRules(s: NetState, forwards: readonly PortForward[]): Promise<void> {
  const byFamily = new Map<4 | 6, MasqRule[]>([[4, []], [6, []]]);
  s.networks.forEach((n, index) => {
    if (!n.ipMasq || !n.result) return;
    if (n.masqBySubnet) return;
    for (const ip of n.result.ips) byFamily.get(ip.version === '6' ? 6 : 4)!.push({ source: ip.address.split('/')[0] as string, subnet: networkOf(ip.address), index });
  });
  const pn = forwards.length > 0 ? portNetwork(s) : undefined;
  const podIp = pn?.result?.ips.find((i) => i.version === '4')?.address.split('/')[0];
  if (forwards.length > 0 && !podIp) throw new RktError('STATE', `networking: network "${pn?.netName ?? '?'}" has no IPv4 address for port forwarding`);
  const jobs: Promise<void>[] = [];
  for (const family of [4, 6] as const) {
    const rules = natRules(s.uuid, family, byFamily.get(family)!, family === 4 ? forwards : [], podIp);
    if (!rules) continue;
    if (!s.families.includes(family)) s.families.push(family);
    jobs.push(restoreAsync(family, rules));
  }
  if (forwards.length > 0 && pn?.result) {
    // Localhost access: DNATed packets from 127.0.0.1 leave through the host-side interface.
    for (const i of pn.result.interfaces) {
      if (i.sandbox) continue;
      try {
        writeFileSync(`/proc/sys/net/ipv4/conf/${i.name}/route_localnet`, '1');
      } catch (e) {
        debug(`route_localnet on ${i.name}: ${(e as Error).message}`);
      }
    }
  }
  const res = await Promise.allSettled(jobs);
  const bad = res.find((r) => r.status === 'rejected');
  if (bad) throw new RktError('STATE', `networking: ${(bad as PromiseRejectedResult).reason?.message ?? 'iptables failed'}`);
}

/** Adds the port forwards of a set-up pod (rolls the whole network back on failure). */
export async function addForwards(s: NetState, forwards: readonly PortForward[]): Promise<void> {
  if (forwards.length === 0) return;
  try {
    await checkHostPorts(forwards);
    s.forwards = [...forwards];
    await applyRules({ ...s, networks: s.networks.map((n) => ({ ...n, ipMasq: false })) }, forwards);
    if (!s.families.includes(4)) s.families.push(4);
  } catch (e) {
    teardownState(s);
    throw e;
  }
}

export function writeNetFiles(podDir: string, s: NetState): void {
  writeFileSync(join(podDir, 'net-teardown.sh'), teardownScript(s), { mode: 0o700 });
  writeFileSync(join(podDir, 'netns'), s.netns);
  writeFileSync(join(podDir, 'net-state.json'), JSON.stringify(s));
  writeFileSync(join(podDir, 'net-info.json'), JSON.stringify(netInfo(s)));
}

/** host-local IPAM files held by a container (`<id>\r\n<ifname>`), in one network's dir. */
function releaseIpam(dir: string, uuid: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (n === 'lock' || n.startsWith('last_reserved_ip')) continue;
    try {
      const t = readFileSync(join(dir, n), 'utf8');
      if (t.split(/\r?\n/)[0]?.trim() === uuid) rmSync(join(dir, n), { force: true });
    } catch {
      /* gone */
    }
  }
}

function ipamDirs(s: NetState | undefined): string[] {
  if (!s || s.networks.length === 0) {
    try {
      return readdirSync(IPAM_DIR).map((n) => join(IPAM_DIR, n));
    } catch {
      return [];
    }
  }
  return s.networks.map((n) => {
    const ipam = n.conf.ipam as { type?: string; dataDir?: string } | undefined;
    return ipam?.dataDir ? join(ipam.dataDir, n.netName) : join(IPAM_DIR, n.netName);
  });
}

/**
 * Removes everything of the pod's networks: CNI DEL (reverse order), rkt's
 * iptables rules, leftover IPAM reservations, the netns. Idempotent and
 * best-effort: returns the problems met (for debug output).
 */
export function teardownState(s: NetState | undefined, uuid = s?.uuid ?? ''): string[] {
  const problems: string[] = [];
  if (!uuid) return problems;
  const ns = join(NETNS_DIR, netnsName(uuid));
  const nsExists = existsSync(ns);
  const path = cniPath();
  for (const n of [...(s?.networks ?? [])].reverse()) {
    if (!existsSync(n.pluginPath)) continue;
    const err = invokeSync({ command: 'DEL', plugin: n.pluginPath, containerId: uuid, netns: nsExists ? ns : '', ifName: n.ifName, args: n.args, path, conf: withPrev(n.conf, n.rawResult) });
    if (err) problems.push(`CNI DEL ${n.netName}: ${err}`);
  }
  const families = new Set<4 | 6>(s ? s.families : [4]);
  if (!s && existsSync('/proc/net/if_inet6')) families.add(6);
  for (const f of families) {
    const err = removePodRules(uuid, f);
    if (err) problems.push(err);
  }
  for (const d of ipamDirs(s)) releaseIpam(d, uuid);
  if (existsSync(ns)) {
    const r = childProcess().spawnSync('ip', ['netns', 'delete', netnsName(uuid)], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) {
      childProcess().spawnSync('umount', ['-l', ns], { stdio: 'ignore', timeout: 30_000 });
      rmSync(ns, { force: true });
    }
  }
  return problems;
}

/** Network teardown of a pod from what its dir records; also works when nothing was recorded. */
export function teardownPodNetwork(podDir: string, uuid: string): string[] {
  let s: NetState | undefined;
  try {
    s = JSON.parse(readFileSync(join(podDir, 'net-state.json'), 'utf8')) as NetState;
  } catch {
    s = undefined;
  }
  // A pod without any network record and without a netns never had a contained network.
  if (!s && !existsSync(join(NETNS_DIR, netnsName(uuid)))) {
    if (!existsSync(join(podDir, 'netns'))) return [];
  }
  // Already done completely (at exit): gc and rm need not redo CNI DEL.
  if (existsSync(join(podDir, 'net-down')) && !existsSync(join(NETNS_DIR, netnsName(uuid)))) return [];
  const problems = teardownState(s, uuid);
  for (const p of problems) debug(`network teardown of pod ${uuid}: ${p}`);
  if (problems.length === 0) {
    try {
      writeFileSync(join(podDir, 'net-down'), '');
    } catch {
      /* the pod dir is being removed */
    }
  }
  return problems;
}

/*
 * A setup in flight is recorded in DATA/net/pending/<uuid> (owner: this
 * process) until the pod dir holds its network files, so that a rkt killed
 * before the pod dir exists leaves something gc can find.
 */
function pendingFile(dataDir: string, uuid: string): string {
  return join(dataDir, 'net', 'pending', uuid);
}

export function markPending(dataDir: string, uuid: string): void {
  mkdirSync(join(dataDir, 'net', 'pending'), { recursive: true, mode: 0o750 });
  writeFileSync(pendingFile(dataDir, uuid), formatProcId(selfId()));
}

export function clearPending(dataDir: string, uuid: string): void {
  for (const sfx of ['', '.out', '.err', '.rc', '.rc.tmp', '.rc.pid']) rmSync(`${pendingFile(dataDir, uuid)}${sfx}`, { force: true });
}

/** gc: tears down the networks of setups whose rkt died before recording them in a pod dir. */
export function gcPendingNetworks(dataDir: string): void {
  const dir = join(dataDir, 'net', 'pending');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const uuid of names) {
    if (!/^[0-9a-f-]{36}$/.test(uuid)) continue;
    let owner;
    try {
      owner = parseProcId(readFileSync(join(dir, uuid), 'utf8'));
    } catch {
      continue;
    }
    if (isAlive(owner)) continue;
    for (const p of teardownState(undefined, uuid)) debug(`network teardown of ${uuid}: ${p}`);
    clearPending(dataDir, uuid);
  }
}

/**
 * The monitor's cleanup command for this pod: POD_DIR/net-teardown.sh (a
 * shell costs far less than starting Node at every pod exit). If gc has
 * moved the pod meanwhile, gc does the teardown. `rkt __net-teardown UUID`
 * runs the Node version by hand.
 */
export function teardownArgv(podDir: string): string[] {
  return ['/bin/sh', join(podDir, 'net-teardown.sh')];
}

function shq(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/**
 * The pod's network teardown as a shell script (POD_DIR/net-teardown.sh),
 * run by the monitor's detached cleanup when the pod exits: the same steps
 * as teardownState, without starting Node. It writes POD_DIR/net-down when
 * everything succeeded, so that gc/rm skip the CNI DEL; otherwise they redo
 * it all. Pure.
 */
export function teardownScript(s: NetState): string {
  const id = chainId(s.uuid);
  const out = [
    '#!/bin/sh',
    '# Written by rkt: the network teardown of this pod (docs/networking.md).',
    `ns=${shq(s.netns)}`,
    '[ -e "$ns" ] || ns=',
    'ok=0',
    `export CNI_CONTAINERID=${shq(s.uuid)} CNI_PATH=${shq(cniPath().join(':'))}`,
  ];
  for (const n of [...s.networks].reverse()) {
    out.push(`CNI_COMMAND=DEL CNI_NETNS="$ns" CNI_IFNAME=${shq(n.ifName)} CNI_ARGS=${shq(n.args)} ${shq(n.pluginPath)} >/dev/null 2>&1 <<'RKT_EOF' || ok=1`);
    out.push(JSON.stringify(withPrev(n.conf, n.rawResult)), 'RKT_EOF');
  }
  // Same selection as cleanupRules: the pod's chains, and the rules with its comment elsewhere.
  const awk = `awk -v c='"rkt:${s.uuid}"' -v id='${id}' 'BEGIN { print "*nat" } /^:/ { n = substr($1, 2); if (index(n, "-" id)) ch[n] = 1; next } /^-A / && index($0, c) && !index($2, "-" id) { sub(/^-A /, "-D "); print } END { for (x in ch) print "-F " x; for (x in ch) print "-X " x; print "COMMIT" }'`;
  for (const f of s.families) {
    const t = f === 4 ? 'iptables' : 'ip6tables';
    out.push(`${t}-save -t nat | ${awk} | ${t}-restore -w --noflush || ok=1`);
  }
  out.push(`[ -z "$ns" ] || ip netns delete ${shq(netnsName(s.uuid))} || ok=1`);
  out.push('[ "$ok" = 0 ] && : >"${0%/*}/net-down"', 'exit 0', '');
  return out.join('\n');
}

export { chainId };
