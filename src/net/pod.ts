// The networking flags of `run` / `run-prepared` and what the launch needs:
// validation (no side effects), the early start of the setup, and the
// /etc/hosts and /etc/resolv.conf files of the apps.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GlobalOptions } from '../config/global.ts';
import { dataDir } from '../config/files.ts';
import { RktError } from '../lib/errors.ts';
import type { FlagDef } from '../cli/flags.ts';
import { chooseNets, loadNetConfs, parseNetFlags, type ChosenNet, type NetSelection } from './config.ts';
import { hostsMode, resolvMode, validateDns, type DnsOptions, type HostsMode, type ResolvMode } from './dns.ts';
import { checkPortRequests, parsePortFlag, resolvePorts, type ImagePort, type PortRequest } from './ports.ts';

export const NET_FLAGS: FlagDef[] = [
  { name: 'net', type: 'strings', bare: 'default', help: 'configure the pod\'s networking. Optionally, pass a list of user-configured networks to load and set arguments to pass to each network, respectively. Syntax: --net[=n[:args], ...] (default, default-restricted, host, none, all, or names from net.d)' },
  { name: 'port', type: 'strings', help: 'ports to forward. format: "name:[hostIP:]hostPort"' },
  { name: 'dns', type: 'strings', help: 'name servers to write in /etc/resolv.conf; "host" binds the host\'s file, "none" disables CNI-provided DNS' },
  { name: 'dns-search', type: 'strings', help: 'DNS search domains to write in /etc/resolv.conf' },
  { name: 'dns-opt', type: 'strings', help: 'DNS options to write in /etc/resolv.conf' },
  { name: 'dns-domain', type: 'string', default: '', help: 'DNS domain to write in /etc/resolv.conf' },
  { name: 'hosts-entry', type: 'strings', help: 'entries to add to the pod-wide /etc/hosts. Pass \'host\' to use the host\'s /etc/hosts' },
];

export interface NetPlan {
  dataDir: string;
  selection: NetSelection;
  nets: ChosenNet[];
  ports: PortRequest[];
  dns: DnsOptions;
}

/** Validates the networking flags and loads the net.d files. No side effects. */
export async function planNet(g: GlobalOptions, v: Record<string, unknown>, flavor: 'default' | 'fly'): Promise<NetPlan> {
  let selection = parseNetFlags((v.net as string[] | undefined) ?? []);
  const dns: DnsOptions = {
    servers: (v.dns as string[] | undefined) ?? [],
    search: (v['dns-search'] as string[] | undefined) ?? [],
    options: (v['dns-opt'] as string[] | undefined) ?? [],
    domain: (v['dns-domain'] as string | undefined) ?? '',
    hostsEntries: (v['hosts-entry'] as string[] | undefined) ?? [],
  };
  validateDns(dns);
  const ports = ((v.port as string[] | undefined) ?? []).map(parsePortFlag);
  checkPortRequests(ports);
  if (flavor === 'fly') selection = { kind: 'host' };
  if (selection.kind !== 'contained') {
    if (ports.length > 0) throw new RktError('USAGE', `--port needs a contained network (not --net=${selection.kind})`);
    return { dataDir: dataDir(g), selection, nets: [], ports, dns };
  }
  const confs = loadNetConfs([g.localConfig, g.userConfig]);
  const nets = chooseNets(selection, confs);
  const { preflight } = await import('./setup.ts');
  preflight(nets);
  return { dataDir: dataDir(g), selection, nets, ports, dns };
}

export type PodNetMode = 'none' | 'host' | { netns: string; cleanup: string[] };

export interface EtcPlan {
  hosts: HostsMode;
  resolv: ResolvMode;
}

export interface LaunchNet {
  mode: PodNetMode;
  etc: EtcPlan;
}

export interface NetHandle {
  /** Rolls back whatever the early setup did (when the run fails before launching). */
  abort(): Promise<void>;
  /** Waits for the setup, adds the port forwards, writes the pod's network files. */
  finish(podDir: string, dataDir: string, hostname: string, declared: ImagePort[]): Promise<LaunchNet>;
}

/** Starts the network setup now (netns + CNI ADD run in child processes). */
export function startNet(plan: NetPlan, uuid: string): NetHandle {
  const contained = plan.selection.kind === 'contained';
  const ready = contained
    ? import('./setup.ts').then((m) => {
        m.markPending(plan.dataDir, uuid);
        return m.setupNetworks(uuid, plan.nets).catch((e: unknown) => {
          m.clearPending(plan.dataDir, uuid);
          throw e;
        });
      })
    : Promise.resolve(undefined);
  ready.catch(() => {});
  return {
    async abort() {
      const s = await ready.catch(() => undefined);
      if (!s) return;
      const m = await import('./setup.ts');
      m.teardownState(s);
      m.clearPending(plan.dataDir, uuid);
    },
    async finish(podDir, dataDir, hostname, declared) {
      const { debug } = await import('../lib/log.ts');
      debug(`networking: pod prepared at ${Math.round(performance.now())} ms, waiting for the network`);
      const s = await ready;
      const dns = plan.dns;
      const etc = (cni: Parameters<typeof resolvMode>[1]): EtcPlan => ({ hosts: hostsMode(dns, hostname), resolv: resolvMode(dns, cni) });
      if (!s) return { mode: plan.selection.kind === 'host' ? 'host' : 'none', etc: etc(undefined) };
      const m = await import('./setup.ts');
      try {
        await m.addForwards(s, resolvePorts(plan.ports, declared));
      } catch (e) {
        m.teardownState(s);
        m.clearPending(plan.dataDir, uuid);
        throw e;
      }
      m.writeNetFiles(podDir, s);
      m.clearPending(plan.dataDir, uuid);
      debug(`networking: ready at ${Math.round(performance.now())} ms`);
      const withDns = s.networks.find((n) => n.result && n.result.dns.nameservers.length > 0)?.result?.dns;
      return { mode: { netns: s.netns, cleanup: m.teardownArgv(podDir) }, etc: etc(withDns) };
    },
  };
}

/** Ports the apps of a pod manifest declare. */
export function declaredPorts(manifest: { apps: { app: { ports?: unknown } }[] } | undefined): ImagePort[] {
  const out: ImagePort[] = [];
  for (const a of manifest?.apps ?? []) {
    for (const p of (a.app.ports as ImagePort[] | undefined) ?? []) out.push(p);
  }
  return out;
}

/** Writes pod/hosts and pod/resolv.conf when generated. */
export function writeEtcFiles(podDir: string, etc: EtcPlan): void {
  if (etc.hosts.kind === 'generated') writeFileSync(join(podDir, 'hosts'), etc.hosts.content);
  if (etc.resolv.kind === 'generated') writeFileSync(join(podDir, 'resolv.conf'), etc.resolv.content);
}

interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/**
 * The /etc/hosts and /etc/resolv.conf binds of one app: `before` its own
 * mounts (so a volume wins), `after` them (so the file wins over volumes).
 */
export function etcMounts(podDir: string, etc: EtcPlan, app: { imageHasHosts: boolean; mounts: { destination: string }[] }): { before: Mount[]; after: Mount[] } {
  const before: Mount[] = [];
  const after: Mount[] = [];
  const volumeAt = (p: string) => app.mounts.some((m) => m.destination === p);
  if (etc.hosts.kind === 'host') after.push({ destination: '/etc/hosts', type: 'bind', source: '/etc/hosts', options: ['bind', 'ro'] });
  else if (etc.hosts.wins) after.push({ destination: '/etc/hosts', type: 'bind', source: join(podDir, 'hosts'), options: ['bind'] });
  else if (!app.imageHasHosts && !volumeAt('/etc/hosts')) before.push({ destination: '/etc/hosts', type: 'bind', source: join(podDir, 'hosts'), options: ['bind'] });
  if (etc.resolv.kind === 'host') after.push({ destination: '/etc/resolv.conf', type: 'bind', source: '/etc/resolv.conf', options: ['bind', 'ro'] });
  else if (etc.resolv.kind === 'generated') after.push({ destination: '/etc/resolv.conf', type: 'bind', source: join(podDir, 'resolv.conf'), options: ['bind', 'ro'] });
  return { before, after };
}
