// Docker images in the store: their layer stack (for overlayfs lowerdir),
// a merged read-only view while a pod is prepared, and a flattened render
// for `image render/extract/export/verify`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RktError, errMessage } from '../../lib/errors.ts';
import type { ImageRow, Store } from '../store/store.ts';
import { treeIdFor } from '../store/store.ts';
import { ANN } from './convert.ts';

export function isDockerImage(row: Pick<ImageRow, 'kind'>): boolean {
  return row.kind === 'docker';
}

/** `registry/repo:tag` of a converted image (its own name otherwise). */
export function dockerListName(row: Pick<ImageRow, 'manifest'>): string | undefined {
  return row.manifest.annotations?.find((a) => a.name === ANN.originalName)?.value;
}

/** The image's layer rows, top first. */
export function layerChain(store: Store, row: ImageRow): ImageRow[] {
  const out: ImageRow[] = [];
  let cur: ImageRow | undefined = row;
  for (let depth = 0; cur; depth++) {
    if (depth > 1000) throw new RktError('INVALID_IMAGE', `image "${row.name}": layer chain too long or cyclic`);
    const dep: { imageID?: string | undefined; imageName: string } | undefined = cur.manifest.dependencies?.[0];
    if (!dep) break;
    const next: ImageRow | undefined = dep.imageID ? store.get(dep.imageID.slice(0, 'sha512-'.length + 64)) : undefined;
    if (!next) throw new RktError('NOT_FOUND', `image "${row.name}": layer ${dep.imageName} is missing from the store`, { hint: 'fetch the image again' });
    out.push(next);
    cur = next;
  }
  return out;
}

/** Rootfs dirs of the layers, top first (an overlay lowerdir list). */
export function layerDirs(store: Store, row: ImageRow): string[] {
  return layerChain(store, row).map((l) => {
    if (!l.treeId) throw new RktError('INVALID_IMAGE', `layer ${l.name} has no tree`);
    const dir = store.treeDir(l.treeId);
    if (!existsSync(join(dir, 'rendered'))) throw new RktError('NOT_FOUND', `layer ${l.name} is missing its files in the store`, { hint: 'remove the image and fetch it again' });
    return join(dir, 'rootfs');
  });
}

function mountView(lower: string[], target: string): void {
  mkdirSync(target, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'overlay', '-o', `ro,lowerdir=${lower.join(':')}`, 'overlay', target], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new RktError('IO', `cannot mount the layers of the image read-only on ${target}: ${err || errMessage(e)}`);
  }
}

function unmount(target: string): void {
  try {
    execFileSync('umount', [target], { stdio: 'ignore' });
  } catch {
    try {
      execFileSync('umount', ['-l', target], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
  }
}

/** Unmounts anything mounted under dir (left by a killed process), deepest first. */
export function unmountUnder(dir: string): void {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .map((p) => p.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
  for (const p of points) unmount(p);
}

export interface ImageTree {
  /** A dir holding rootfs/ as the container will see it (read it, do not write). */
  tree: string;
  /** Overlay lowerdir for the pod (`:`-joined layer dirs, top first); undefined for native ACIs. */
  lower: string | undefined;
  release(): void;
}

/** The merged view of a Docker image's layers (a read-only overlay mount under cas/tmp while needed). */
export function openLayeredTree(store: Store, row: ImageRow): ImageTree {
  const dirs = layerDirs(store, row);
  if (dirs.length === 0) throw new RktError('INVALID_IMAGE', `image "${row.name}" has no layers`);
  if (dirs.length === 1) return { tree: join(dirs[0] as string, '..'), lower: dirs[0] as string, release: () => undefined };
  const tmp = store.makeTmpDir();
  const target = join(tmp, 'rootfs');
  try {
    mountView(dirs, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return {
    tree: tmp,
    lower: dirs.join(':'),
    release: () => {
      unmount(target);
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Flattened render of a Docker image into the tree store (for image render/extract/export/verify). */
export async function renderDocker(store: Store, row: ImageRow): Promise<string> {
  const { sealTree } = await import('../import.ts');
  const chain = layerChain(store, row);
  const treeId = treeIdFor([...chain.map((l) => l.key).reverse(), row.key]);
  const dest = store.treeDir(treeId);
  if (row.treeId === treeId && existsSync(join(dest, 'rendered'))) return dest;
  const view = openLayeredTree(store, row);
  const tmp = store.makeTmpDir();
  try {
    const tree = join(tmp, 'tree');
    mkdirSync(join(tree, 'rootfs'), { recursive: true });
    execFileSync('cp', ['-a', '--', `${join(view.tree, 'rootfs')}/.`, join(tree, 'rootfs')]);
    view.release();
    // A single layer is its own tree: drop whiteout devices it may carry.
    const size = sealTree(tree);
    return store.installTree(tree, treeId, row.key, size);
  } finally {
    view.release();
    rmSync(tmp, { recursive: true, force: true });
  }
}
