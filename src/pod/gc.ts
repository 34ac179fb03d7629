// Pod garbage collection (rkt/gc.go): mark exited pods, discard aborted and
// expired prepared pods, then sweep what has been marked for longer than the
// grace period. Only pods without a live owner are ever touched.
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatProcId, selfId, isAlive, parseProcId } from '../lib/proc.ts';
import { listPods, movePod, ownerAlive, createdNs, podsDir, type Pod } from './pods.ts';
import { teardown } from './teardown.ts';
import { gcPendingNetworks } from '../net/setup.ts';

export interface GcOptions {
  gracePeriod: number;
  expirePrepared: number;
  markOnly: boolean;
  onMark: (pod: Pod) => void;
  onCollect: (pod: Pod) => void;
}

function markTime(pod: Pod): number {
  try {
    return Number(readFileSync(join(pod.dir, 'gc-marked'), 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** Claims a pod for deletion; false if another live process already is deleting it. */
export function claimDeletion(pod: Pod): boolean {
  try {
    const prev = parseProcId(readFileSync(join(pod.dir, 'deleter'), 'utf8'));
    if (isAlive(prev)) return false;
  } catch {
    /* no deleter yet */
  }
  writeFileSync(join(pod.dir, 'deleter'), formatProcId(selfId()));
  return true;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function gcPods(dataDir: string, o: GcOptions): void {
  const now = Date.now();
  for (const pod of listPods(dataDir)) {
    if (pod.place === 'run' && !ownerAlive(pod)) {
      writeFileSync(join(pod.dir, 'gc-marked'), String(now));
      const moved = movePod(pod, 'exited-garbage');
      if (moved) o.onMark(moved);
    } else if (pod.place === 'prepare' && !ownerAlive(pod)) {
      movePod(pod, 'garbage');
    } else if (pod.place === 'embryo') {
      // An embryo of a live process is just being created.
      const created = createdNs(pod);
      if (!ownerAlive(pod) && (created === undefined || Number(created / 1_000_000n) < now - 60_000)) movePod(pod, 'garbage');
    }
  }
  // Hidden embryos (see createPod) of processes that died before renaming them.
  const embryos = podsDir(dataDir, 'embryo');
  for (const name of safeReaddir(embryos)) {
    if (!name.startsWith('.')) continue;
    try {
      if (statSync(join(embryos, name)).mtimeMs < now - 60_000) rmSync(join(embryos, name), { recursive: true, force: true });
    } catch {
      /* gone meanwhile */
    }
  }
  if (o.markOnly) return;
  for (const pod of listPods(dataDir)) {
    if (pod.place === 'prepared') {
      const created = createdNs(pod);
      if (created !== undefined && Number(created / 1_000_000n) < now - o.expirePrepared) movePod(pod, 'garbage');
    }
  }
  for (const pod of listPods(dataDir)) {
    if (pod.place === 'exited-garbage') {
      if (now - markTime(pod) < o.gracePeriod) continue;
    } else if (pod.place !== 'garbage') continue;
    if (!claimDeletion(pod)) continue;
    o.onCollect(pod);
    teardown(pod);
  }
  // Network setups whose rkt died before the pod dir recorded them (net/setup.ts).
  gcPendingNetworks(dataDir);
}
