// Locating the executables stage1 drives: the OCI runtime, catatonit and
// the pod monitor.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RktError } from '../lib/errors.ts';

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin'])) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

export function isCrun(runtime: string): boolean {
  return runtime === 'crun' || runtime.endsWith('/crun');
}

/**
 * The OCI runtime: --oci-runtime / RKT_OCI_RUNTIME (runc, crun or a path);
 * by default crun when it is installed (a C program: ~35 ms to create and
 * start a container here, against ~100 ms for runc), else runc. On hosts
 * with hybrid cgroups, where crun as shipped refuses to run, the monitor
 * gives it a private view without the unified hierarchy's controllers
 * (stage1/README.md); the host's cgroup settings are never changed.
 */
export function ociRuntime(choice: string | undefined): string {
  const want = choice || process.env.RKT_OCI_RUNTIME || (which('crun') ? 'crun' : 'runc');
  if (want.includes('/')) {
    if (!existsSync(want)) throw new RktError('NOT_FOUND', `OCI runtime ${want} does not exist`);
    return want;
  }
  if (want !== 'runc' && want !== 'crun') throw new RktError('USAGE', `unknown OCI runtime "${want}": use runc, crun or a path`);
  const p = which(want);
  if (!p) throw new RktError('NOT_FOUND', `OCI runtime "${want}" not found`, { hint: 'install it (apt-get install runc crun), or run "make deps"' });
  return p;
}

/** The runtime a pod was started with (its monitor.conf), else the default one. */
export function podRuntime(podDir: string): string {
  try {
    const line = readFileSync(join(podDir, 'monitor.conf'), 'utf8').split('\n').find((l) => l.startsWith('runtime\t'));
    if (line) return line.slice('runtime\t'.length);
  } catch {
    /* not launched yet */
  }
  return ociRuntime(undefined);
}

export function catatonitPath(): string {
  const p = process.env.RKT_CATATONIT || which('catatonit') || '/usr/libexec/podman/catatonit';
  if (!existsSync(p)) throw new RktError('NOT_FOUND', 'catatonit not found', { hint: 'apt-get install catatonit, or run "make deps"' });
  return p;
}

/** The monitor binary built next to the bundle (dist/stage1/rkt-monitor). */
export function monitorPath(): string {
  const p = process.env.RKT_MONITOR || join(dirname(process.argv[1] ?? '.'), 'stage1', 'rkt-monitor');
  if (!existsSync(p)) throw new RktError('NOT_FOUND', `pod monitor ${p} not found`, { hint: 'run "make build"' });
  return p;
}
