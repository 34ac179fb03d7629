// --port NAME:[HOSTIP:]HOSTPORT, IP masquerade, and the iptables rules
// behind them (rkt's RKT-PFWD-DNAT/SNAT chains). Rule text generation and
// parsing are pure; applying goes through one iptables-restore call.
import { RktError } from '../lib/errors.ts';
import { childProcess, dgram, net } from '../lib/builtins.ts';

export interface PortRequest {
  name: string;
  hostIp: string;
  hostPort: number;
}

export interface ImagePort {
  name: string;
  protocol: string;
  port: number;
  count?: number | undefined;
}

export interface PortForward {
  name: string;
  protocol: 'tcp' | 'udp';
  podPort: number;
  hostIp: string;
  hostPort: number;
}

export function parsePortFlag(v: string): PortRequest {
  const parts = v.split(':');
  let name: string;
  let hostIp = '';
  let port: string;
  if (parts.length === 2) [name, port] = parts as [string, string];
  else if (parts.length === 3) [name, hostIp, port] = parts as [string, string, string];
  else throw new RktError('USAGE', `invalid --port "${v}": use NAME:[HOSTIP:]HOSTPORT`);
  const n = Number(port);
  if (!name || !/^\d+$/.test(port) || n < 1 || n > 65535) throw new RktError('USAGE', `invalid --port "${v}": use NAME:[HOSTIP:]HOSTPORT with a port in 1-65535`);
  if (hostIp && net().isIP(hostIp) !== 4) throw new RktError('USAGE', `invalid --port "${v}": the host IP must be an IPv4 address`);
  return { name, hostIp, hostPort: n };
}

/** A pod manifest's `ports` entry (appc ExposedPort). */
export interface ExposedPort {
  name: string;
  hostPort: number;
  hostIP?: string | null | undefined;
}

/** A pod manifest's `ports` as forwarding requests, checked as --port values are. */
export function exposedPortRequests(ports: readonly ExposedPort[] | null | undefined): PortRequest[] {
  const reqs = (ports ?? []).map((p) => {
    if (!Number.isInteger(p.hostPort) || p.hostPort < 1 || p.hostPort > 65535) throw new RktError('USAGE', `port "${p.name}": hostPort must be in 1-65535 (got ${p.hostPort})`);
    const hostIp = p.hostIP ?? '';
    if (hostIp && net().isIP(hostIp) !== 4) throw new RktError('USAGE', `port "${p.name}": hostIP must be an IPv4 address (got "${hostIp}")`);
    return { name: p.name, hostIp, hostPort: p.hostPort };
  });
  checkPortRequests(reqs);
  return reqs;
}

/** Checks duplicates among the requests themselves. Pure. */
export function checkPortRequests(reqs: readonly PortRequest[]): void {
  const names = new Set<string>();
  const hosts = new Set<string>();
  for (const r of reqs) {
    if (names.has(r.name)) throw new RktError('USAGE', `port "${r.name}" forwarded twice`);
    names.add(r.name);
    const k = `${r.hostIp || '0.0.0.0'}:${r.hostPort}`;
    if (hosts.has(k) || hosts.has(`0.0.0.0:${r.hostPort}`) || (!r.hostIp && [...hosts].some((h) => h.endsWith(`:${r.hostPort}`)))) {
      throw new RktError('USAGE', `host port ${r.hostPort} given twice`);
    }
    hosts.add(k);
  }
}

/** Maps the requested names to the ports the apps declare. Pure. */
export function resolvePorts(reqs: readonly PortRequest[], declared: readonly ImagePort[]): PortForward[] {
  return reqs.map((r) => {
    const p = declared.find((d) => d.name === r.name);
    if (!p) {
      const known = declared.map((d) => d.name);
      throw new RktError('NOT_FOUND', `port name "${r.name}" is not declared by any app of the pod`, { hint: known.length ? `declared ports: ${known.join(', ')}` : 'the images declare no ports' });
    }
    const protocol = p.protocol.toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp') throw new RktError('USAGE', `port "${r.name}" has protocol ${p.protocol}: only tcp and udp can be forwarded`);
    return { name: r.name, protocol, podPort: p.port, hostIp: r.hostIp, hostPort: r.hostPort };
  });
}

/** The id used in chain names: 12 hex digits of the UUID (chain names are at most 28 characters). */
export function chainId(uuid: string): string {
  return uuid.replace(/-/g, '').slice(0, 12).toUpperCase();
}

export function comment(uuid: string): string {
  return `rkt:${uuid}`;
}

export interface MasqRule {
  /** Sources masqueraded: the pod's address, or the whole subnet (CIDR, known before the ADD). */
  source: string;
  /** The network's CIDR (not masqueraded). */
  subnet: string;
  /** Index, to name the chain. */
  index: number;
}

/** iptables-restore input (nat table) for a pod's masquerade and port forwards. Pure. */
export function natRules(uuid: string, family: 4 | 6, masq: readonly MasqRule[], forwards: readonly PortForward[], podIp: string | undefined): string {
  const id = chainId(uuid);
  const c = `-m comment --comment "${comment(uuid)}"`;
  const head: string[] = ['*nat'];
  const body: string[] = [];
  const all = family === 4 ? '0.0.0.0/0' : '::/0';
  const host = family === 4 ? '/32' : '/128';
  for (const m of masq) {
    const chain = `RKT-MASQ-${id}-${m.index}`;
    head.push(`:${chain} - [0:0]`);
    body.push(`-A ${chain} -d ${m.subnet} ${c} -j ACCEPT`);
    body.push(`-A ${chain} ! -d ${family === 4 ? '224.0.0.0/4' : 'ff00::/8'} ${c} -j MASQUERADE`);
    body.push(`-A POSTROUTING -s ${m.source.includes('/') ? m.source : `${m.source}${host}`} ${c} -j ${chain}`);
  }
  if (forwards.length > 0 && podIp) {
    const dnat = `RKT-PFWD-DNAT-${id}`;
    const snat = `RKT-PFWD-SNAT-${id}`;
    head.push(`:${dnat} - [0:0]`, `:${snat} - [0:0]`);
    body.push(`-A PREROUTING -m addrtype --dst-type LOCAL ${c} -j ${dnat}`);
    body.push(`-A OUTPUT -m addrtype --dst-type LOCAL ${c} -j ${dnat}`);
    body.push(`-A POSTROUTING ${c} -j ${snat}`);
    for (const f of forwards) {
      const dst = f.hostIp ? `-d ${f.hostIp}${host} ` : '';
      body.push(`-A ${dnat} ${dst}-p ${f.protocol} -m ${f.protocol} --dport ${f.hostPort} ${c} -j DNAT --to-destination ${podIp}:${f.podPort}`);
      body.push(`-A ${snat} -s ${family === 4 ? '127.0.0.0/8' : '::1/128'} -d ${podIp}${host} -p ${f.protocol} -m ${f.protocol} --dport ${f.podPort} ${c} -j MASQUERADE`);
    }
  }
  void all;
  if (body.length === 0) return '';
  return `${[...head, ...body, 'COMMIT'].join('\n')}\n`;
}

/**
 * From `iptables-save -t nat` output, the restore input removing every rule
 * of the pod (its comment, or CNI's `id: "<uuid>"` comment) and every chain
 * those rules jump to that belongs to rkt or CNI, plus the pod's own chains.
 * Pure; '' when there is nothing to remove.
 */
export function cleanupRules(save: string, uuid: string): string {
  const id = chainId(uuid);
  const ours = (chain: string) => chain.startsWith(`RKT-MASQ-${id}`) || chain === `RKT-PFWD-DNAT-${id}` || chain === `RKT-PFWD-SNAT-${id}`;
  const chains = new Set<string>();
  const existing = new Set<string>();
  const dels: string[] = [];
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    if (table !== 'nat') continue;
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] as string;
      existing.add(name);
      if (ours(name)) chains.add(name);
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const chain = line.split(' ')[1] as string;
    const mine = line.includes(`"${comment(uuid)}"`) || line.includes(`id: \\"${uuid}\\"`) || line.includes(`id: "${uuid}"`);
    if (!mine || ours(chain)) continue;
    dels.push(`-D ${line.slice(3)}`);
    const target = / -j (\S+)/.exec(line)?.[1];
    if (target && (target.startsWith('CNI-') || ours(target))) chains.add(target);
  }
  const ops = [...dels];
  for (const ch of chains) if (existing.has(ch)) ops.push(`-F ${ch}`);
  for (const ch of chains) if (existing.has(ch)) ops.push(`-X ${ch}`);
  if (ops.length === 0) return '';
  return `*nat\n${ops.join('\n')}\nCOMMIT\n`;
}

function tool(family: 4 | 6, what: 'save' | 'restore'): string {
  return `${family === 4 ? 'iptables' : 'ip6tables'}-${what}`;
}

export function restoreAsync(family: 4 | 6, input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(tool(family, 'restore'), ['-w', '--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new RktError('NOT_FOUND', `cannot run ${tool(family, 'restore')}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new RktError('STATE', `${tool(family, 'restore')} failed: ${Buffer.concat(err).toString().trim().split('\n').at(-1) ?? ''}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Removes every nat rule and chain of the pod. Idempotent; returns an error text or undefined. */
export function removePodRules(uuid: string, family: 4 | 6): string | undefined {
  const save = childProcess().spawnSync(tool(family, 'save'), ['-t', 'nat'], { encoding: 'utf8', timeout: 30_000 });
  if (save.status !== 0 || typeof save.stdout !== 'string') return save.error?.message ?? `${tool(family, 'save')} failed`;
  const input = cleanupRules(save.stdout, uuid);
  if (!input) return undefined;
  const r = childProcess().spawnSync(tool(family, 'restore'), ['-w', '--noflush'], { input, encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? undefined : `${tool(family, 'restore')}: ${r.stderr?.trim()}`;
}

/** Host ports already forwarded by rkt pods (from `iptables-save -t nat`). Pure. */
export function forwardedPorts(save: string): Set<string> {
  const out = new Set<string>();
  for (const line of save.split('\n')) {
    if (!line.startsWith('-A RKT-PFWD-DNAT-')) continue;
    const proto = / -p (\w+)/.exec(line)?.[1];
    const port = / --dport (\d+)/.exec(line)?.[1];
    if (proto && port) out.add(`${proto}/${port}`);
  }
  return out;
}

function canBind(protocol: 'tcp' | 'udp', ip: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (protocol === 'tcp') {
      const s = net().createServer();
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      s.listen({ host: ip || '0.0.0.0', port, exclusive: true }, () => s.close(() => resolve(undefined)));
    } else {
      const s = dgram().createSocket('udp4');
      s.once('error', (e: NodeJS.ErrnoException) => {
        s.close();
        resolve(e.code ?? e.message);
      });
      s.bind({ address: ip || '0.0.0.0', port, exclusive: true }, () => s.close(() => resolve(undefined)));
    }
  });
}

/** Refuses host ports that a host process listens on or another pod forwards. */
export async function checkHostPorts(forwards: readonly PortForward[]): Promise<void> {
  if (forwards.length === 0) return;
  const save = childProcess().spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8', timeout: 30_000 });
  const taken = forwardedPorts(typeof save.stdout === 'string' ? save.stdout : '');
  for (const f of forwards) {
    if (taken.has(`${f.protocol}/${f.hostPort}`)) throw new RktError('EXISTS', `host port ${f.hostPort}/${f.protocol} is already forwarded to another pod`);
    const err = await canBind(f.protocol, f.hostIp, f.hostPort);
    if (err === 'EADDRINUSE') throw new RktError('EXISTS', `host port ${f.hostIp ? `${f.hostIp}:` : ''}${f.hostPort}/${f.protocol} is already in use`);
    if (err === 'EADDRNOTAVAIL') throw new RktError('USAGE', `host IP ${f.hostIp} of --port ${f.name} is not an address of this host`);
  }
}
