// Fetching a Docker/OCI image into the store: resolve the manifest and
// config, download + verify + unpack the missing layers in parallel (one
// pass each, into cas/tmp), then commit everything under the index's write
// lock: layer trees renamed into cas/tree/layer-sha256-<diffID>, one index
// row per layer (keyed by its chain ID, depending on its parent), and the
// image's own row (a tiny ACI: the converted manifest, depending on the top
// layer). Nothing is visible before that commit.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import type { GlobalOptions } from '../../config/global.ts';
import { loadConfig } from '../../config/files.ts';
import { RktError, errMessage } from '../../lib/errors.ts';
import { debug } from '../../lib/log.ts';
import type { ImageManifest } from '../aci/manifest.ts';
import type { ImageRow, Store } from '../store/store.ts';
import { appcArch, convertConfig, layerManifest } from './convert.ts';
import { chainIds } from './manifest.ts';
import { formatDockerRef, parseTransportRef, type Transport } from './reference.ts';
import { Registry, isTransientNetError, sleep } from './registry.ts';
import { resolveDockerArchive, resolveOci, resolveRegistry, type LayerSource, type ResolvedImage } from './sources.ts';
import { UnpackWorker, unpackLayer, workerFile } from './layer-sink.ts';
import { Progress } from './progress.ts';

export type PullPolicy = 'new' | 'update' | 'never';

/** Layers fetched side by side when they are extracted on this thread. */
const PARALLEL = 3;
/** Extraction threads for a big pull (capped by the CPUs). */
const WORKERS = 2;
/** Below this many compressed bytes in all, a pull extracts on this thread. */
const WORKER_MIN_BYTES = 8 << 20;
const LAYER_ATTEMPTS = 3;

export function layerKey(chainId: string): string {
  return `sha512-${createHash('sha512').update(`docker-layer:${chainId}`).digest('hex').slice(0, 64)}`;
}

export function layerName(chainId: string): string {
  return `docker-layer/${chainId.replace(':', '-')}`;
}

export function layerTreeId(diffId: string): string {
  return `layer-${diffId.replace(':', '-')}`;
}

/** A tiny ACI (manifest + empty rootfs/) holding the converted manifest; its SHA-512 is the image ID. */
async function topAci(manifest: ImageManifest): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const mtime = new Date(0);
  pack.entry({ name: 'manifest', mode: 0o644, mtime, uid: 0, gid: 0 }, JSON.stringify(manifest));
  pack.entry({ name: 'rootfs', type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function treeIndexed(store: Store, treeId: string): boolean {
  return store.db.prepare('SELECT 1 AS x FROM images WHERE tree_id = ? LIMIT 1').get(treeId) !== undefined && existsSync(join(store.treeDir(treeId), 'rendered'));
}

async function runLimited<T>(items: T[], limit: number, fn: (t: T, lane: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lane = async (n: number) => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item, n);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, (_, n) => lane(n)));
  if (failed !== undefined) throw failed;
}

interface Job {
  index: number;
  layer: LayerSource;
  treeId: string;
  dir: string;
  bytes: number;
}

async function fetchLayer(job: Job, progress: Progress, worker: UnpackWorker | undefined): Promise<void> {
  const short = job.layer.digest ?? job.layer.diffId;
  const what = `layer ${short}`;
  for (let attempt = 1; ; attempt++) {
    rmSync(job.dir, { recursive: true, force: true });
    mkdirSync(job.dir, { recursive: true });
    progress.start(job.index, short, job.layer.size);
    try {
      const input = await job.layer.open();
      const r = await unpackLayer(
        input,
        {
          dest: job.dir,
          compression: job.layer.compression,
          digest: job.layer.digest,
          size: job.layer.size,
          diffId: job.layer.diffId,
          what,
          onBytes: (n) => progress.add(job.index, n),
        },
        worker,
      );
      job.bytes = r.bytes;
      writeFileSync(join(job.dir, 'rendered'), '');
      progress.done(job.index);
      return;
    } catch (e) {
      if (job.layer.remote && isTransientNetError(e) && attempt < LAYER_ATTEMPTS) {
        const msg = errMessage(e);
        debug(`${msg.startsWith(what) ? msg : `${what}: ${msg}`}; retrying`);
        progress.reset(job.index);
        await sleep(250 * attempt);
        continue;
      }
      progress.fail(job.index);
      throw e;
    }
  }
}

/** Downloads and unpacks what is missing, then commits. Returns the image's row. */
export async function importResolved(store: Store, img: ResolvedImage, remoteUrl: string | undefined): Promise<ImageRow> {
  const diffIds = img.layers.map((l) => l.diffId);
  const chains = chainIds(diffIds);
  const os = img.config.os ?? 'linux';
  const arch = appcArch(img.config.architecture, img.config.variant);
  const tmp = store.makeTmpDir();
  const progress = new Progress(img.layers.length);
  let workers: UnpackWorker[] = [];
  try {
    const jobs: Job[] = [];
    const seenTree = new Set<string>();
    img.layers.forEach((layer, index) => {
      const treeId = layerTreeId(layer.diffId);
      if (seenTree.has(treeId) || treeIndexed(store, treeId)) {
        seenTree.add(treeId);
        progress.skip(index, layer.digest ?? layer.diffId);
        return;
      }
      seenTree.add(treeId);
      jobs.push({ index, layer, treeId, dir: join(tmp, `layer-${index}`), bytes: 0 });
    });
    // Largest first: the biggest layer is the critical path; small ones fill in beside it.
    jobs.sort((a, b) => (b.layer.size ?? 0) - (a.layer.size ?? 0));
    debug(`${img.naming.originalName}: ${img.layers.length} layer(s), ${jobs.length} to fetch`);
    // Big pulls extract on worker threads (one per CPU, at most WORKERS),
    // each taking one layer after another; small ones here, where a
    // thread's start-up (~30 ms) would cost more than it saves.
    const total = jobs.reduce((n, j) => n + (j.layer.size ?? WORKER_MIN_BYTES), 0);
    // RKT_UNPACK_WORKERS: 0 = never, 1 = always (tests), unset = by size.
    const file = process.env.RKT_UNPACK_WORKERS === '1' || total >= WORKER_MIN_BYTES ? workerFile() : undefined;
    const lanes = file ? Math.max(1, Math.min(WORKERS, availableParallelism(), jobs.length)) : PARALLEL;
    workers = file ? Array.from({ length: lanes }, () => new UnpackWorker(file)) : [];
    for (const w of workers) w.warm();
    await runLimited(jobs, lanes, (j, lane) => fetchLayer(j, progress, workers[lane]));
    progress.finish();

    // Manifests: layers bottom-up, chained; then the image.
    const layerRows: { key: string; name: string; manifest: ImageManifest; treeId: string; size: number; job: Job | undefined }[] = [];
    let parent: { name: string; key: string } | undefined;
    chains.forEach((chainId, i) => {
      const diffId = diffIds[i] as string;
      const key = layerKey(chainId);
      const name = layerName(chainId);
      const job = jobs.find((j) => j.layer.diffId === diffId);
      layerRows.push({ key, name, manifest: layerManifest({ name, diffId, chainId, os, arch, parent }), treeId: layerTreeId(diffId), size: job?.bytes ?? 0, job });
      parent = { name, key };
    });
    const manifest = convertConfig({
      config: img.config,
      name: img.naming.name,
      version: img.naming.version,
      registry: img.naming.registry,
      repository: img.naming.repository,
      originalName: img.naming.originalName,
      configDigest: img.configDigest,
      manifestDigest: img.manifestDigest,
      topLayer: parent,
    });
    const aci = await topAci(manifest);
    const key = `sha512-${createHash('sha512').update(aci).digest('hex').slice(0, 64)}`;
    const blobTmp = join(tmp, 'blob');
    writeFileSync(blobTmp, aci);

    return store.write(() => {
      const now = Date.now();
      const insert = store.db.prepare('INSERT INTO images (key, name, manifest, import_time, last_used, size, tree_id, tree_size, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      let total = 0;
      for (const l of layerRows) {
        const dest = store.treeDir(l.treeId);
        const indexed = store.db.prepare('SELECT 1 AS x FROM images WHERE tree_id = ? LIMIT 1').get(l.treeId) !== undefined;
        if (l.job && existsSync(l.job.dir) && !(indexed && existsSync(join(dest, 'rendered')))) {
          // Not there (or an unindexed leftover): ours goes in.
          rmSync(dest, { recursive: true, force: true });
          mkdirSync(join(dest, '..'), { recursive: true });
          renameSync(l.job.dir, dest);
        } else if (!existsSync(join(dest, 'rendered'))) {
          throw new RktError('STATE', `layer ${l.treeId} disappeared from the store while pulling (concurrent image gc?); try again`);
        }
        const existing = store.get(l.key);
        const size = existing?.treeSize || l.size || (store.db.prepare('SELECT max(tree_size) AS n FROM images WHERE tree_id = ?').get(l.treeId) as { n: number | null }).n || 0;
        total += size;
        if (!existing) insert.run(l.key, l.name, JSON.stringify(l.manifest), now, now, 0, l.treeId, size, 'layer');
      }
      let row = store.get(key);
      if (!row) {
        const blob = store.blobPath(key);
        mkdirSync(join(blob, '..'), { recursive: true });
        renameSync(blobTmp, blob);
        insert.run(key, manifest.name, JSON.stringify(manifest), now, now, aci.length, null, total, 'docker');
        row = store.get(key) as ImageRow;
      }
      if (remoteUrl) store.putRemote({ url: remoteUrl, sigUrl: null, etag: img.topDigest, key, cacheMaxAge: null, downloadTime: now });
      return row;
    });
  } finally {
    for (const w of workers) w.close();
    progress.finish();
    rmSync(tmp, { recursive: true, force: true });
  }
}

export interface DockerFetchOptions {
  store: Store;
  global: GlobalOptions;
  pullPolicy: PullPolicy;
}

/** Fetches `transport:rest` per the pull policy. Requires --insecure-options=image (no signatures). */
export async function fetchDocker(transport: Transport, rest: string, raw: string, o: DockerFetchOptions): Promise<ImageRow> {
  if (!o.global.insecure.has('image')) {
    throw new RktError('NO_SIGNATURE', `cannot verify ${raw}: Docker and OCI images have no appc signatures`, { hint: 'use --insecure-options=image to fetch it anyway' });
  }
  const parsed = parseTransportRef(transport, rest);
  if (parsed.transport !== 'docker') {
    if (o.pullPolicy === 'never') throw new RktError('NOT_FOUND', `image ${raw} is not in the store and --pull-policy=never`);
    const img = parsed.transport === 'docker-archive' ? await resolveDockerArchive(parsed.local.spec) : await resolveOci(parsed.transport, parsed.local.spec);
    return importResolved(o.store, img, undefined);
  }
  const ref = parsed.ref;
  const url = `docker://${formatDockerRef(ref)}`;
  const prior = o.store.remote(url);
  const priorRow = prior ? o.store.get(prior.key) : undefined;
  if (priorRow && o.pullPolicy !== 'update') return priorRow;
  if (!priorRow && o.pullPolicy === 'never') throw new RktError('NOT_FOUND', `image ${raw} is not in the store and --pull-policy=never`);
  const cfg = loadConfig(o.global);
  const reg = new Registry(ref.registry, ref.repository, {
    allowHttp: o.global.insecure.has('http'),
    insecureTls: o.global.insecure.has('tls'),
    credentials: cfg.dockerAuth[ref.registry] ?? (ref.registry === 'registry-1.docker.io' ? cfg.dockerAuth['docker.io'] ?? cfg.dockerAuth['index.docker.io'] : undefined),
  });
  try {
    const top = await reg.manifest(ref.digest ?? ref.tag ?? 'latest');
    if (priorRow && prior && prior.etag === top.digest) {
      debug(`${url}: manifest ${top.digest} unchanged`);
      o.store.putRemote({ ...prior, downloadTime: Date.now() });
      return priorRow;
    }
    const img = await resolveRegistry(reg, ref, top);
    return await importResolved(o.store, img, url);
  } finally {
    reg.close();
  }
}
