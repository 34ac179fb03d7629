// Starting a prepared pod: OCI bundles for its apps (and, for pods of
// several apps, a pause container owning the shared namespaces), then this
// process becomes the pod monitor through execve, keeping its PID — which
// is the pod's liveness identity (see lib/proc.ts).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RktError } from '../lib/errors.ts';
import { debug } from '../lib/log.ts';
import { execve } from '../lib/exec.ts';
import type { Plan, PlannedApp } from '../pod/plan.ts';
import type { Pod } from '../pod/pods.ts';
import { appSpec, DEFAULT_CAPS, flySpec, hostCaps, pauseSpec, type NsSpec, type OciMount } from './oci.ts';
import { catatonitPath, monitorPath, ociRuntime } from './runtime.ts';

export interface LaunchOptions {
  net: 'none' | 'host';
  hostname: string;
  interactive: boolean;
  exitPolicy: 'fail-fast' | 'all';
  stopTimeout: number;
  insecurePaths: boolean;
  insecureCapabilities: boolean;
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

function checkConfPath(p: string): string {
  if (/[\t\n]/.test(p)) throw new RktError('USAGE', `path ${JSON.stringify(p)} contains a tab or newline`);
  return p;
}

function appMounts(pod: Pod, app: PlannedApp): OciMount[] {
  const out: OciMount[] = [];
  if (!app.imageHasHosts) out.push({ destination: '/etc/hosts', type: 'bind', source: join(pod.dir, 'hosts'), options: ['bind'] });
  for (const m of app.mounts) {
    out.push({ destination: m.destination, type: 'bind', source: m.source.startsWith('/') ? m.source : join(pod.dir, m.source), options: [m.recursive ? 'rbind' : 'bind', ...(m.readOnly ? ['ro'] : [])] });
  }
  return out;
}

function startPause(pod: Pod, runtime: string, o: LaunchOptions): number {
  const dir = join(pod.dir, 'pause');
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  const network: NsSpec = o.net === 'host' ? 'host' : 'new';
  writeFileSync(join(dir, 'config.json'), JSON.stringify(pauseSpec({ rootfs: join(dir, 'rootfs'), catatonit: catatonitPath(), hostname: o.hostname, network, cgroupsPath: `/${pauseId(pod.uuid)}` })));
  // The detached container inherits runc's stdio: a pipe would never reach EOF, so errors go to a file.
  const logPath = join(dir, 'runc.log');
  const log = openSync(logPath, 'w');
  let r;
  try {
    r = spawnSync(runtime, ['run', '-d', '--pid-file', join(dir, 'pid'), '--bundle', dir, pauseId(pod.uuid)], { stdio: ['ignore', 'ignore', log], timeout: 60_000 });
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
  writeFileSync(join(pod.dir, 'hosts'), hostsFile(o.hostname));
  const conf: string[] = [
    `uuid\t${pod.uuid}`,
    `runtime\t${runtime}`,
    `exit-policy\t${o.exitPolicy}`,
    `stop-timeout\t${o.stopTimeout}`,
    `interactive\t${o.interactive ? 1 : 0}`,
    `debug\t${o.debug ? 1 : 0}`,
  ];
  let ns: { pid: NsSpec; network: NsSpec; ipc: NsSpec; uts: NsSpec };
  let init: string | undefined;
  if (plan.flavor === 'default' && plan.apps.length > 1) {
    const pid = startPause(pod, runtime, o);
    conf.push(`pause\t${pauseId(pod.uuid)}`);
    const p = (t: string) => ({ path: `/proc/${pid}/ns/${t}` });
    ns = { pid: p('pid'), network: o.net === 'host' ? 'host' : p('net'), ipc: p('ipc'), uts: p('uts') };
    debug(`pause container of pod ${pod.uuid} is pid ${pid}`);
  } else {
    // One app: it owns the namespaces itself, with catatonit as its PID 1.
    ns = { pid: 'new', network: o.net === 'host' ? 'host' : 'new', ipc: 'new', uts: 'new' };
    init = catatonitPath();
  }
  const allCaps = hostCaps(readFileSync('/proc/self/status', 'utf8'));
  const terminal = o.interactive && process.stdin.isTTY === true;
  for (const app of plan.apps) {
    const base = join(pod.dir, 'apps', app.name);
    const rootfs = join(base, 'rootfs');
    if (!plan.noOverlay) conf.push(`overlay\t${checkConfPath(app.treeRootfs)}\t${checkConfPath(join(base, 'upper'))}\t${checkConfPath(join(base, 'work'))}\t${checkConfPath(rootfs)}`);
    const common = {
      caps: plan.flavor === 'fly' || o.insecureCapabilities ? allCaps : DEFAULT_CAPS,
      rootfs,
      readonlyRootfs: app.readonlyRootfs,
      args: app.args,
      env: app.env,
      cwd: app.cwd,
      uid: app.uid,
      gid: app.gid,
      additionalGids: app.additionalGids,
      terminal,
      mounts: appMounts(pod, app),
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
          noNewPrivileges: false,
        });
    writeFileSync(join(base, 'config.json'), JSON.stringify(spec));
    conf.push(`app\t${app.name}\t${containerId(pod.uuid, app.name)}\t${checkConfPath(base)}`);
  }
  writeFileSync(join(pod.dir, 'monitor.conf'), `${conf.join('\n')}\n`);
  debug(`executing ${monitor} for pod ${pod.uuid}`);
  execve(monitor, [monitor, pod.dir]);
}
