// Starting a prepared pod: OCI bundles for its apps (and, for pods of
// several apps, a pause container owning the shared namespaces), then this
// process becomes the pod monitor through execve, keeping its PID — which
// is the pod's liveness identity (see lib/proc.ts).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RktError } from '../lib/errors.ts';
import { debug } from '../lib/log.ts';
import { canFinishAfterExec, execve } from '../lib/exec.ts';
import type { Plan, PlannedApp } from '../pod/plan.ts';
import type { Pod } from '../pod/pods.ts';
import { appSpec, flySpec, hostCaps, pauseSpec, type NsSpec, type OciMount } from './oci.ts';
import { catatonitPath, isCrun, monitorPath, ociRuntime } from './runtime.ts';
import { etcMounts, writeEtcFiles, type EtcPlan, type PodNetMode } from '../net/pod.ts';
import { hostsMode, NO_DNS } from '../net/dns.ts';
import { ociSecurity } from './security.ts';
import { prepareUserns, usernsPauseRootfs } from '../pod/userns.ts';
import { childProcess } from '../lib/builtins.ts';

export interface LaunchOptions {
  /** none: a fresh netns with lo only (runc's); host; or the pod's CNI netns (net/setup.ts). */
  net: PodNetMode;
  /** /etc/hosts and /etc/resolv.conf of the apps (net/pod.ts); default: the hosts stub only. */
  etc?: EtcPlan | undefined;
  /** Last step before the execve (net/pod.ts: waits for the pod's CNI ADD, which ran meanwhile). */
  beforeExec?: (() => void) | undefined;
  /**
   * Instead of beforeExec, with the launcher, for one non-interactive app:
   * the monitor takes over at once and runc creates the container while
   * `finish` (run after the handover) completes the network; it must write
   * POD/net-ready, or POD/net-failed with a one-line error. The monitor
   * starts the app only then (stage1/monitor.c, `net-gate`).
   */
  netGate?: { netns: string; finish: () => void } | undefined;
  hostname: string;
  interactive: boolean;
  exitPolicy: 'fail-fast' | 'all';
  stopTimeout: number;
  insecurePaths: boolean;
  insecureCapabilities: boolean;
  /** --insecure-options=seccomp: no seccomp filter. */
  insecureSeccomp?: boolean;
  runtime?: string | undefined;
  debug: boolean;
}

export function containerId(uuid: string, app: string): string {
  return `rkt-${uuid}-${app}`;
}

export function pauseId(uuid: string): string {
  return `rkt-${uuid}`;
}

/** /etc/hosts for apps whose image has none: localhost plus the pod's hostname. */
export function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4 ${hostname}\n::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n`;
}

/** The file of the app's memory cgroup counting OOM kills (cgroup v1 or v2), which the monitor reads when the app exits. */
function oomFile(id: string): string | undefined {
  if (existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') || existsSync('/sys/fs/cgroup/memory/tasks')) return `/sys/fs/cgroup/memory/${id}/memory.oom_control`;
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return `/sys/fs/cgroup/${id}/memory.events`;
  return undefined;
}

function checkConfPath(p: string): string {
  if (/[\t\n]/.test(p)) throw new RktError('USAGE', `path ${JSON.stringify(p)} contains a tab or newline`);
  return p;
}

function appMounts(pod: Pod, app: PlannedApp, etc: EtcPlan): OciMount[] {
  const { before, after } = etcMounts(pod.dir, etc, app);
  const out: OciMount[] = [...before];
  for (const m of app.mounts) {
    out.push({ destination: m.destination, type: 'bind', source: m.source.startsWith('/') ? m.source : join(pod.dir, m.source), options: [m.recursive ? 'rbind' : 'bind', ...(m.readOnly ? ['ro'] : [])] });
  }
  out.push(...after);
  return out;
}

function netNs(net: PodNetMode): NsSpec {
  return net === 'host' ? 'host' : net === 'none' ? 'new' : { path: net.netns };
}

function startPause(pod: Pod, runtime: string, o: LaunchOptions, userns?: { uidBase: number; count: number }): number {
  const dir = join(pod.dir, 'pause');
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  const network: NsSpec = netNs(o.net);
  // With --private-users the pause container owns the pod's user namespace; its (empty) rootfs must be reachable from inside it.
  const rootfs = userns ? usernsPauseRootfs(pod.uuid, userns) : join(dir, 'rootfs');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(pauseSpec({ rootfs, catatonit: catatonitPath(), hostname: o.hostname, network, cgroupsPath: `/${pauseId(pod.uuid)}`, userns })));
  // The detached container inherits runc's stdio: a pipe would never reach EOF, so errors go to a file.
  const logPath = join(dir, 'runc.log');
  const log = openSync(logPath, 'w');
  let r;
  try {
    const args = ['run', '-d', '--pid-file', join(dir, 'pid'), '--bundle', dir, pauseId(pod.uuid)];
    // crun's create/run need the monitor's hybrid-cgroup fix (stage1/README.md).
    const [cmd, argv] = isCrun(runtime) ? [monitorPath(), ['--runtime-wrap', runtime, ...args]] : [runtime, args];
    r = childProcess().spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', log], timeout: 60_000 });
  } finally {
    closeSync(log);
  }
  if (r.status !== 0) {
    const msg = readFileSync(logPath, 'utf8').trim().split('\n').at(-1) || r.error?.message || `exit ${r.status}`;
    throw new RktError('STATE', `cannot start the pod's pause container: ${msg}`);
  }
  return Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
}

/** Writes bundles and monitor.conf, then replaces this process by the monitor. Does not return. */
export function launch(pod: Pod, plan: Plan, o: LaunchOptions): never {
  const runtime = ociRuntime(o.runtime);
  const monitor = monitorPath();
  if (o.interactive && plan.apps.length !== 1) throw new RktError('USAGE', '--interactive needs exactly one app');
  const etc: EtcPlan = o.etc ?? { hosts: hostsMode(NO_DNS, o.hostname), resolv: { kind: 'image' } };
  writeEtcFiles(pod.dir, etc);
  const conf: string[] = [
    `uuid\t${pod.uuid}`,
    `runtime\t${runtime}`,
    `exit-policy\t${o.exitPolicy}`,
    `stop-timeout\t${o.stopTimeout}`,
    `interactive\t${o.interactive ? 1 : 0}`,
    `debug\t${o.debug ? 1 : 0}`,
  ];
  let ns: { pid: NsSpec; network: NsSpec; ipc: NsSpec; uts: NsSpec; user?: NsSpec };
  let init: string | undefined;
  if (plan.flavor === 'default' && plan.apps.length > 1) {
    if (plan.privateUsers && typeof o.net === 'object') {
      // Apps join the pause's user namespace first (runc's order), and from there a network namespace made outside it cannot be joined.
      throw new RktError('USAGE', '--private-users with several apps needs --net=none or --net=host in this version');
    }
    const pid = startPause(pod, runtime, o, plan.privateUsers);
    conf.push(`pause\t${pauseId(pod.uuid)}`);
    const p = (t: string) => ({ path: `/proc/${pid}/ns/${t}` });
    ns = { pid: p('pid'), network: o.net === 'host' ? 'host' : p('net'), ipc: p('ipc'), uts: p('uts'), ...(plan.privateUsers ? { user: p('user') } : {}) };
    debug(`pause container of pod ${pod.uuid} is pid ${pid}`);
  } else {
    // One app: it owns the namespaces itself, with catatonit as its PID 1.
    ns = { pid: 'new', network: netNs(o.net), ipc: 'new', uts: 'new' };
    init = catatonitPath();
  }
  const allCaps = hostCaps(readFileSync('/proc/self/status', 'utf8'));
  const terminal = o.interactive && process.stdin.isTTY === true;
  for (const app of plan.apps) {
    const base = join(pod.dir, 'apps', app.name);
    const rootfs = join(base, 'rootfs');
    const sec = ociSecurity(app.security, app.uid, { insecureCapabilities: o.insecureCapabilities, insecureSeccomp: o.insecureSeccomp ?? false, allCaps });
    const userns = plan.flavor === 'default' && plan.privateUsers ? prepareUserns(pod, plan, app, conf) : undefined;
    if (userns) {
      /* overlay (or idmapped tree) and volume binds set up by prepareUserns */
    } else if (!plan.noOverlay) conf.push(`overlay\t${checkConfPath(app.treeRootfs)}\t${checkConfPath(join(base, 'upper'))}\t${checkConfPath(join(base, 'work'))}\t${checkConfPath(rootfs)}`);
    const common = {
      caps: plan.flavor === 'fly' ? allCaps : sec.caps,
      rootfs: userns ? userns.rootfs : rootfs,
      readonlyRootfs: app.readonlyRootfs,
      args: app.args,
      env: app.env,
      cwd: app.cwd,
      uid: app.uid,
      gid: app.gid,
      additionalGids: app.additionalGids,
      terminal,
      mounts: userns ? userns.mounts(appMounts(pod, app, etc)) : appMounts(pod, app, etc),
      cgroupsPath: `/${containerId(pod.uuid, app.name)}`,
    };
    const spec = plan.flavor === 'fly'
      ? flySpec(common)
      : appSpec({
          ...common,
          hostname: o.hostname,
          namespaces: ns,
          init,
          insecurePaths: o.insecurePaths,
          noNewPrivileges: sec.noNewPrivileges,
          seccomp: sec.seccomp,
          resources: sec.resources,
          oomScoreAdj: sec.oomScoreAdj,
          userns: userns ? plan.privateUsers : undefined,
        });
    writeFileSync(join(base, 'config.json'), JSON.stringify(spec));
    conf.push(`app\t${app.name}\t${containerId(pod.uuid, app.name)}\t${checkConfPath(base)}`);
    const oom = oomFile(containerId(pod.uuid, app.name));
    if (oom && plan.flavor === 'default') conf.push(`oom\t${app.name}\t${oom}`);
  }
  // Network teardown (CNI DEL, iptables, netns), run by the monitor's detached cleanup.
  if (typeof o.net === 'object') conf.push(['cleanup', ...o.net.cleanup.map(checkConfPath)].join('\t'));
  const gate = o.netGate && plan.apps.length === 1 && !o.interactive && canFinishAfterExec() ? o.netGate : undefined;
  if (gate) conf.push(`net-gate\t${checkConfPath(join(pod.dir, 'net-ready'))}\t${checkConfPath(join(pod.dir, 'net-failed'))}\t${checkConfPath(gate.netns)}`);
  writeFileSync(join(pod.dir, 'monitor.conf'), `${conf.join('\n')}\n`);
  if (!gate) o.beforeExec?.();
  debug(`executing ${monitor} for pod ${pod.uuid}`);
  execve(monitor, [monitor, pod.dir], process.env, gate?.finish);
}
