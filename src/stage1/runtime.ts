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

/** crun refuses cgroup v1 hybrid hosts that list controllers in the unified hierarchy. */
export function crunUsable(): boolean {
  try {
    return readFileSync('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').trim() === '';
  } catch {
    return true;
  }
}

/**
 * The OCI runtime: --oci-runtime / RKT_OCI_RUNTIME (runc, crun or a path);
 * by default runc (crun is taken only when asked for, and refused where it cannot run).
 */
export function ociRuntime(choice: string | undefined): string {
  const want = choice || process.env.RKT_OCI_RUNTIME || 'runc';
  if (want.includes('/')) {
    if (!existsSync(want)) throw new RktError('NOT_FOUND', `OCI runtime ${want} does not exist`);
    return want;
  }
  if (want !== 'runc' && want !== 'crun') throw new RktError('USAGE', `unknown OCI runtime "${want}": use runc, crun or a path`);
  if (want === 'crun' && !crunUsable()) {
    throw new RktError('USAGE', 'crun cannot run on this host (cgroup v1 hybrid with controllers in the unified hierarchy); use runc');
  }
  const p = which(want);
  if (!p) throw new RktError('NOT_FOUND', `OCI runtime "${want}" not found`, { hint: 'install it (apt-get install runc), or run "make deps"' });
  return p;
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
