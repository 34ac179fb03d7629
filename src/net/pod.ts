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
import * as setup from './setup.ts';
import { debug, debugAt } from '../lib/log.ts';

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

/**
 * Validates the networking flags and loads the net.d files. No side effects.
 * `podPorts`: forwards a pod manifest asks for (its `ports`), before any --port.
 */
export async function planNet(g: GlobalOptions, v: Record<string, unknown>, flavor: 'default' | 'fly', podPorts: readonly PortRequest[] = []): Promise<NetPlan> {
  let selection = parseNetFlags((v.net as string[] | undefined) ?? []);
  const dns: DnsOptions = {
    servers: (v.dns as string[] | undefined) ?? [],
    search: (v['dns-search'] as string[] | undefined) ?? [],
    options: (v['dns-opt'] as string[] | undefined) ?? [],
    domain: (v['dns-domain'] as string | undefined) ?? '',
    hostsEntries: (v['hosts-entry'] as string[] | undefined) ?? [],
  };
  validateDns(dns);
  const flagPorts = ((v.port as string[] | undefined) ?? []).map(parsePortFlag);
  const ports = [...podPorts, ...flagPorts];
  checkPortRequests(ports);
  if (flavor === 'fly') selection = { kind: 'host' };
  if (selection.kind !== 'contained') {
    if (flagPorts.length > 0) throw new RktError('USAGE', `--port needs a contained network (not --net=${selection.kind})`);
    if (ports.length > 0) throw new RktError('USAGE', `the pod manifest forwards ports (${ports.map((p) => p.name).join(', ')}): that needs a contained network (not --net=${selection.kind})`);
    return { dataDir: dataDir(g), selection, nets: [], ports, dns };
  }
  const confs = loadNetConfs([g.localConfig, g.userConfig]);
  const nets = chooseNets(selection, confs);
  setup.preflight(nets);
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
  /**
   * The fast path (networks whose outcome is known in advance: ptp, bridge,
   * macvlan, ipvlan with host-local/static IPAM, masquerade by subnet, no
   * ports): the pod is launched without waiting for the ADD; launchNet()
   * gives what the bundles need and finishSync(), called just before the
   * execve, waits for the ADD and records it.
   */
  fast: boolean;
  /** Rolls back whatever the early setup did (when the run fails before launching). */
  abort(): Promise<void>;
  /** Waits for the setup, adds the port forwards, writes the pod's network files. */
  finish(podDir: string, dataDir: string, hostname: string, declared: ImagePort[]): Promise<LaunchNet>;
  /** Fast path: the launch's view, before the ADD is done. */
  launchNet(podDir: string, hostname: string): LaunchNet;
  /** Fast path: waits (synchronously) for the ADD, writes the network files; rolls back and throws on failure. */
  finishSync(podDir: string): void;
}

const FAST_TYPES = new Set(['ptp', 'bridge', 'macvlan', 'ipvlan']);
const FAST_IPAM = new Set(['host-local', 'static']);

/** Starts the network setup now (netns + CNI ADD run in a child shell). */
export function startNet(plan: NetPlan, uuid: string): NetHandle {
  const contained = plan.selection.kind === 'contained';
  let planned: ReturnType<typeof setup.setupPlan> | undefined;
  if (contained) {
    setup.markPending(plan.dataDir, uuid);
    planned = setup.setupPlan(uuid, plan.nets);
  }
  const fast = contained && process.env.RKT_NET_WAIT !== '1' && plan.ports.length === 0 &&
    plan.nets.every((n) => FAST_TYPES.has(n.net.type) && FAST_IPAM.has(String((n.net.conf.ipam as { type?: string } | undefined)?.type))) &&
    planned !== undefined && setup.masqAllBySubnet(planned.state);
  let outcome: { state: setup.NetState } | { error: unknown } | undefined;
  const ready = planned
    ? setup.setupNetworks(planned.state, planned.env, plan.dataDir).then(
        (state) => {
          outcome = { state };
          return state;
        },
        (e: unknown) => {
          setup.clearPending(plan.dataDir, uuid);
          outcome = { error: e };
          throw e;
        },
      )
    : Promise.resolve(undefined);
  ready.catch(() => {});
  const dns = plan.dns;
  const etc = (hostname: string, cni: Parameters<typeof resolvMode>[1]): EtcPlan => ({ hosts: hostsMode(dns, hostname), resolv: resolvMode(dns, cni) });
  return {
    fast,
    async abort() {
      const s = await ready.catch(() => undefined);
      if (!s) return;
      setup.teardownState(s);
      setup.clearPending(plan.dataDir, uuid);
    },
    async finish(podDir, _dataDir, hostname, declared) {
      debugAt(`networking: pod prepared, waiting for the network`);
      const s = await ready;
      if (!s) return { mode: plan.selection.kind === 'host' ? 'host' : 'none', etc: etc(hostname, undefined) };
      try {
        await setup.addForwards(s, resolvePorts(plan.ports, declared));
      } catch (e) {
        setup.teardownState(s);
        setup.clearPending(plan.dataDir, uuid);
        throw e;
      }
      setup.writeNetFiles(podDir, s);
      setup.clearPending(plan.dataDir, uuid);
      debugAt(`networking: ready`);
      const withDns = s.networks.find((n) => n.result && n.result.dns.nameservers.length > 0)?.result?.dns;
      return { mode: { netns: s.netns, cleanup: setup.teardownArgv(podDir) }, etc: etc(hostname, withDns) };
    },
    launchNet(podDir, hostname) {
      // These plugins return the configuration's own `dns` as their DNS result.
      const confDns = plan.nets.map((n) => n.net.conf.dns as { nameservers?: string[]; search?: string[]; options?: string[]; domain?: string } | undefined).find((d) => (d?.nameservers ?? []).length > 0);
      const cni = confDns ? { nameservers: confDns.nameservers ?? [], search: confDns.search ?? [], options: confDns.options ?? [], domain: confDns.domain } : undefined;
      return { mode: { netns: join(setup.NETNS_DIR, setup.netnsName(uuid)), cleanup: setup.teardownArgv(podDir) }, etc: etc(hostname, cni) };
    },
    finishSync(podDir) {
      debugAt(`networking: pod launched, waiting for the network`);
      if (outcome && 'error' in outcome) throw outcome.error;
      let s: setup.NetState;
      if (outcome) s = outcome.state;
      else {
        s = (planned as NonNullable<typeof planned>).state;
        const r = setup.waitSetupSync(plan.dataDir, uuid);
        if (r.code === 90) {
          setup.clearPending(plan.dataDir, uuid);
          throw new RktError('STATE', `networking: cannot create network namespace ${setup.netnsName(uuid)}: ${r.stderr.trim()}`);
        }
        try {
          setup.processSetup(s, r);
        } catch (e) {
          setup.teardownState(s);
          setup.clearPending(plan.dataDir, uuid);
          throw e;
        }
      }
      setup.writeNetFiles(podDir, s);
      setup.clearPending(plan.dataDir, uuid);
      debugAt(`networking: ready`);
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
