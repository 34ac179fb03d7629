// Rendering: an image's root filesystem with its dependencies applied in
// order (later overwriting earlier) and its pathWhitelist honoured, kept in
// the tree store so pods and `image render` reuse it.
import { createReadStream, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RktError } from '../lib/errors.ts';
import { treeIdFor, type ImageRow, type Store } from './store/store.ts';

/** Resolves a dependency to a stored image (by ID if given, else by name and labels). */
export function findDependency(store: Store, dep: { imageName: string; imageID?: string | undefined; labels?: { name: string; value: string }[] | undefined }): ImageRow | undefined {
  if (dep.imageID) {
    const rows = store.byPrefix(dep.imageID.slice(0, 'sha512-'.length + 64));
    return rows.find((r) => r.name === dep.imageName) ?? rows[0];
  }
  return store.byName(dep.imageName, dep.labels ?? [])[0];
}

/** The image keys to layer, lowest first: each dependency's own chain, then the image. */
export function flattenDependencies(store: Store, row: ImageRow, seen: string[] = []): string[] {
  if (seen.includes(row.key)) throw new RktError('INVALID_IMAGE', `dependency cycle through image "${row.name}"`);
  const out: string[] = [];
  for (const dep of row.manifest.dependencies ?? []) {
    const d = findDependency(store, dep);
    if (!d) throw new RktError('NOT_FOUND', `dependency "${dep.imageName}" of image "${row.name}" is not in the store`);
    for (const k of flattenDependencies(store, d, [...seen, row.key])) if (!out.includes(k)) out.push(k);
  }
  out.push(row.key);
  return out;
}

/** Ensures the image's rendered tree exists; returns the tree dir. */
export async function renderImage(store: Store, row: ImageRow): Promise<string> {
  if (row.kind === 'docker') return (await import('./docker/layers.ts')).renderDocker(store, row);
  // Fast path (every run of a stored image): a tree rendered at import needs no hashing.
  if (!row.manifest.dependencies?.length && row.treeId && existsSync(join(store.treeDir(row.treeId), 'rendered'))) return store.treeDir(row.treeId);
  const keys = flattenDependencies(store, row);
  const treeId = treeIdFor(keys);
  const dest = store.treeDir(treeId);
  if (row.treeId === treeId && existsSync(join(dest, 'rendered'))) return dest;
  if (existsSync(join(dest, 'rendered'))) {
    store.write(() => store.setTree(row.key, treeId, row.treeSize));
    return dest;
  }
  const { extractTar } = await import('./extract.ts');
  const { applyPathWhitelist, sealTree } = await import('./import.ts');
  const tmp = store.makeTmpDir();
  try {
    const tree = join(tmp, 'tree');
    for (const key of keys) {
      await extractTar(createReadStream(store.blobPath(key), { highWaterMark: 1 << 20 }), {
        dest: join(tree, 'rootfs'),
        root: 'rootfs',
        capture: ['manifest'],
        layered: true,
      });
    }
    if (row.manifest.pathWhitelist?.length) applyPathWhitelist(join(tree, 'rootfs'), row.manifest.pathWhitelist);
    const size = sealTree(tree);
    return store.installTree(tree, treeId, row.key, size);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
