// `rkt image gc`: removes images not used within the grace period, then
// whatever a crashed or interrupted command left: unindexed trees and blobs,
// and work dirs of processes that are gone.
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dataDir } from '../../../config/files.ts';
import { listPods } from '../../../pod/pods.ts';
import { join } from 'node:path';
import { formatDuration, parseDuration } from '../../../lib/duration.ts';
import { isErrno } from '../../../lib/errors.ts';
import { pidAlive } from '../../../lib/proc.ts';
import type { Store } from '../../../image/store/store.ts';
import type { Command } from '../../command.ts';
import { openStore } from './common.ts';
import { unmountUnder } from '../../../image/docker/layers.ts';

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
}

const alive = pidAlive;

/** Removes unindexed trees/blobs and abandoned tmp dirs; returns what it removed. */
export function sweepStore(store: Store, inUse: (treeId: string) => boolean = () => false): string[] {
  const removed: string[] = [];
  store.write(() => {
    const rows = store.list();
    const trees = new Set(rows.map((r) => r.treeId).filter((t): t is string => t !== null));
    const keys = new Set(rows.map((r) => r.key));
    for (const t of entries(join(store.casDir, 'tree'))) {
      if (!trees.has(t) && !inUse(t)) {
        store.removeTree(t);
        removed.push(`tree ${t}`);
      }
    }
    const blobRoot = join(store.casDir, 'blob', 'sha512');
    for (const d of entries(blobRoot)) {
      for (const k of entries(join(blobRoot, d))) {
        if (!keys.has(k)) {
          rmSync(join(blobRoot, d, k), { force: true });
          removed.push(`blob ${k}`);
        }
      }
    }
  });
  const tmpRoot = join(store.casDir, 'tmp');
  for (const t of entries(tmpRoot)) {
    const pid = Number.parseInt(t.split('-')[0] ?? '', 10);
    const old = Date.now() - statSync(join(tmpRoot, t)).mtimeMs > 24 * 3600_000;
    if (!Number.isFinite(pid) || pid === process.pid ? old : !alive(pid) || old) {
      unmountUnder(join(tmpRoot, t)); // a killed `rkt run` may leave a Docker image's layer view mounted
      rmSync(join(tmpRoot, t), { recursive: true, force: true });
      removed.push(`tmp ${t}`);
    }
  }
  return removed;
}

/** Tree IDs that pods not yet garbage may still mount (their plan names the tree dirs). */
export function treesInUse(dataDir: string): (treeId: string) => boolean {
  const plans: string[] = [];
  for (const pod of listPods(dataDir)) {
    if (pod.place === 'garbage' || pod.place === 'exited-garbage') continue;
    try {
      plans.push(readFileSync(join(pod.dir, 'plan.json'), 'utf8'));
    } catch {
      // A pod without a plan yet (embryo, preparing): keep every tree to be safe.
      return () => true;
    }
  }
  return (id) => plans.some((p) => p.includes(id));
}

/**
 * As rkt: rendered trees of ACI images that no pod uses are dropped (they
 * are rendered again from the blob when needed). Docker layers keep theirs:
 * their tree is their only copy.
 */
export function dropUnusedTrees(store: Store, dataDir: string): string[] {
  const inUse = treesInUse(dataDir);
  const removed: string[] = [];
  store.write(() => {
    for (const row of store.list()) {
      if (row.kind !== 'aci' || !row.treeId || inUse(row.treeId)) continue;
      if (!existsSync(store.blobPath(row.key))) continue;
      store.removeTree(row.treeId);
      store.clearTree(row.key);
      removed.push(row.treeId);
    }
  });
  return removed;
}

export const command: Command = {
  name: 'image gc',
  usage: 'image gc',
  summary: 'Garbage collect local store',
  description: 'Remove images not used within the grace period, and unreferenced rendered trees and blobs',
  flags: [{ name: 'grace-period', type: 'string', default: '24h0m0s', help: 'duration to wait since an image was last used before removing it' }],
  async run(ctx, parsed) {
    const grace = parseDuration(parsed.values['grace-period'] as string, '--grace-period');
    using store = openStore(ctx.global);
    const inUse = treesInUse(dataDir(ctx.global));
    for (const t of dropUnusedTrees(store, dataDir(ctx.global))) ctx.stderr.write(`rkt: image gc: removed treestore "${t}"\n`);
    const cutoff = Date.now() - grace;
    let n = 0;
    for (const row of store.list()) {
      if (row.lastUsed > cutoff || row.kind === 'layer') continue;
      if (store.remove(row.key, inUse)) {
        ctx.stdout.write(`successfully removed aci for image: "${row.key}" ("${row.name}")\n`);
        n++;
      }
    }
    for (const what of sweepStore(store, inUse)) ctx.stderr.write(`rkt: image gc: removed unreferenced ${what}\n`);
    if (n > 0) ctx.stdout.write(`${n} image(s) successfully removed\n`);
    else if (ctx.global.debug) ctx.stderr.write(`rkt: no images unused for ${formatDuration(grace)}\n`);
    return 0;
  },
};
