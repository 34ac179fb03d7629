// Removing everything a pod holds on the host: its OCI containers, its
// mounts, then its directory. Idempotent: safe to run again after a crash
// at any point, and on pods that never started.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { debug } from '../lib/log.ts';
import type { Pod } from './pods.ts';
import { teardownPodNetwork } from '../net/setup.ts';
import { usernsDir } from './userns.ts';
import { childProcess } from '../lib/builtins.ts';


/** Mount points at or under dir, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const path = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (path === dir || path.startsWith(`${dir}/`)) out.push(path);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** The runtimes' state dirs (root, no --root), each with the binary that owns it. */
const RUNTIME_ROOTS: readonly [string, string][] = [
  ['/run/runc', 'runc'],
  ['/run/crun', 'crun'],
];

/** Container IDs of a pod present in the runtimes' state dirs, with the runtime of each. */
export function podContainers(uuid: string): { id: string; runtime: string }[] {
  const out: { id: string; runtime: string }[] = [];
  for (const [root, runtime] of RUNTIME_ROOTS) {
    let names: string[];
    try {
      names = readdirSync(root);
    } catch {
      continue;
    }
    for (const n of names) if (n === `rkt-${uuid}` || n.startsWith(`rkt-${uuid}-`)) out.push({ id: n, runtime });
  }
  return out;
}

export function deleteContainers(uuid: string): void {
  for (const { id, runtime } of podContainers(uuid)) {
    const r = childProcess().spawnSync(runtime, ['delete', '-f', id], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    if (r.status !== 0) debug(`${runtime} delete -f ${id}: ${r.stderr?.toString().trim()}`);
  }
}

export function unmountAll(dir: string): void {
  for (const mp of mountsUnder(dir)) {
    const r = childProcess().spawnSync('umount', ['-l', mp], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    if (r.status !== 0) debug(`umount ${mp}: ${r.stderr?.toString().trim()}`);
  }
}

/** Tears the pod down and removes its directory. */
export function teardown(pod: Pod): void {
  deleteContainers(pod.uuid);
  // CNI DEL, iptables rules, IPAM leftovers, the netns (idempotent; net/setup.ts).
  teardownPodNetwork(pod.dir, pod.uuid);
  unmountAll(pod.dir);
  // --private-users: the container-visible mounts (pod/userns.ts). Never
  // removed while something is still mounted there (a volume's host files).
  const ns = usernsDir(pod.uuid);
  if (existsSync(ns)) {
    unmountAll(ns);
    if (mountsUnder(ns).length === 0) rmSync(ns, { recursive: true, force: true });
  }
  // The monitor's detached cleanup may still be writing `cleaned` (ENOTEMPTY): rmSync retries.
  if (existsSync(pod.dir)) rmSync(pod.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
}
