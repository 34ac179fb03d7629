// Resolves an image reference to a stored image, fetching it when the pull
// policy says so (Documentation/image-fetching-behavior.md):
//   new    (run/prepare default) store first, fetch only if missing
//   update (fetch default)       check the remote; ETag / max-age reuse
//   never                        store only
// Signatures are verified alongside the import and gate its commit.
// Fetching code is imported lazily: a store hit (every `rkt run` of a
// present image) must not pay for zlib, tar, http or discovery.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GlobalOptions } from '../../config/global.ts';
import { loadConfig } from '../../config/files.ts';
import { RktError, isErrno } from '../../lib/errors.ts';
import { debug } from '../../lib/log.ts';
import type { ImageManifest } from '../aci/manifest.ts';
import { displayName, labelValue, type Label } from '../aci/labels.ts';
import { parseImageRef } from '../ref.ts';
import { findDependency, renderImage } from '../render.ts';
import { formatDockerRef, parseDockerRef } from '../docker/reference.ts';
import type { ImageRow, Store } from '../store/store.ts';
import type { HttpOptions } from './http.ts';

export type PullPolicy = 'new' | 'update' | 'never';

function findDockerStoredSync(store: Store, rest: string): ImageRow | undefined {
  const r = store.remote(`docker://${formatDockerRef(parseDockerRef(rest.replace(/^\/\//, '')))}`);
  return r ? store.get(r.key) : undefined;
}

export function parsePullPolicy(v: string): PullPolicy {
  if (v === 'new' || v === 'update' || v === 'never') return v;
  throw new RktError('USAGE', `invalid --pull-policy "${v}": expected new, update or never`);
}

export interface FetchOptions {
  store: Store;
  global: GlobalOptions;
  pullPolicy: PullPolicy;
  /** Detached signature file given with --signature. */
  signature?: string | undefined;
}

function httpOptions(g: GlobalOptions): HttpOptions {
  const cfg = loadConfig(g);
  return {
    insecureTls: g.insecure.has('tls'),
    allowHttp: g.insecure.has('http'),
    authFor: (host) => {
      const a = cfg.auth[host];
      if (!a) return undefined;
      if (a.type === 'basic') return `Basic ${Buffer.from(`${a.credentials.user ?? ''}:${a.credentials.password ?? ''}`).toString('base64')}`;
      if (a.type === 'oauth') return `Bearer ${a.credentials.token ?? ''}`;
      return undefined;
    },
  };
}

function one(rows: ImageRow[], what: string): ImageRow {
  if (rows.length === 0) throw new RktError('NOT_FOUND', `no image found for "${what}" in the store`);
  if (rows.length > 1) throw new RktError('AMBIGUOUS', `ambiguous image ID "${what}": ${rows.length} images match`);
  return rows[0] as ImageRow;
}

/** Finds a stored image by ID prefix or name[:version][,labels] without fetching. */
export function findStored(store: Store, raw: string): ImageRow {
  const ref = parseImageRef(raw);
  if (ref.kind === 'id') {
    if (ref.prefix.length < 'sha512-'.length + 2) throw new RktError('USAGE', `image ID "${raw}" is too short`);
    return one(store.byPrefix(ref.prefix.slice(0, 'sha512-'.length + 64)), raw);
  }
  if (ref.kind === 'docker' && ref.transport === 'docker') {
    const row = findDockerStoredSync(store, ref.ref);
    if (!row) throw new RktError('NOT_FOUND', `no image "${raw}" in the store`);
    return row;
  }
  if (ref.kind === 'name') {
    const rows = store.byName(ref.name, ref.labels);
    if (rows.length === 0) throw new RktError('NOT_FOUND', `no image named "${raw}" in the store`);
    return rows[0] as ImageRow;
  }
  throw new RktError('USAGE', `"${raw}" is not an image ID or name`);
}

function checkNameAndLabels(m: ImageManifest, name: string, labels: readonly Label[]): void {
  if (m.name !== name) throw new RktError('INVALID_IMAGE', `image name mismatch: asked for "${name}", the image is "${m.name}"`);
  for (const l of labels) {
    if (l.name === 'version' && l.value === 'latest') continue;
    const have = labelValue(m.labels, l.name);
    if (have !== l.value) throw new RktError('INVALID_IMAGE', `image "${m.name}" has ${l.name}=${have ?? '(none)'}, asked for ${l.value}`);
  }
}

interface Source {
  /** Raw (possibly compressed) image file. */
  path: string;
  /** Signature text, or undefined when none was found. */
  signature: string | undefined;
  origin: string;
  /** Expected name and labels (discovery). */
  expect?: { name: string; labels: readonly Label[] };
}

async function verifyAndImport(opts: FetchOptions, src: Source): Promise<ImageRow> {
  const g = opts.global;
  let gate: Promise<unknown> | undefined;
  if (!g.insecure.has('image')) {
    if (src.signature === undefined) {
      throw new RktError('NO_SIGNATURE', `no signature found for ${src.origin}`, {
        hint: 'provide one with --signature, or skip verification with --insecure-options=image',
      });
    }
    const signature = src.signature;
    const name = src.expect?.name ?? (await (await import('../peek.ts')).peekManifest(src.path)).name;
    const { verifyDetachedSignature } = await import('../trust/verify.ts');
    gate = verifyDetachedSignature({ imageName: name, dataPath: src.path, signature, dirs: g }).then((r) => {
      debug(`signature of ${src.origin} made by trusted key ${r.fingerprint}`);
    });
    gate.catch(() => undefined);
  } else {
    debug(`signature verification disabled (--insecure-options=image) for ${src.origin}`);
  }
  const { importAci } = await import('../import.ts');
  const { row } = await importAci(opts.store, src.path, {
    ...(gate ? { gate } : {}),
    ...(src.expect ? { check: (m: ImageManifest) => checkNameAndLabels(m, src.expect!.name, src.expect!.labels) } : {}),
  });
  await gate;
  await ensureDependencies(opts, row);
  return row;
}

async function ensureDependencies(opts: FetchOptions, row: ImageRow): Promise<void> {
  const deps = row.manifest.dependencies ?? [];
  if (deps.length === 0) return;
  for (const dep of deps) {
    let found = findDependency(opts.store, dep);
    if (!found) {
      debug(`fetching dependency ${dep.imageName} of ${row.name}`);
      found = await fetchByName(opts, dep.imageName, dep.labels ?? [], 'new');
    }
    if (dep.imageID && !found.key.startsWith(dep.imageID.slice(0, 'sha512-'.length + 64))) {
      throw new RktError('INVALID_IMAGE', `dependency "${dep.imageName}" of "${row.name}" has ID ${found.key}, the manifest requires ${dep.imageID}`);
    }
  }
  await renderImage(opts.store, row);
}

async function fetchUrl(opts: FetchOptions, url: string, ascUrl: string, expect?: Source['expect']): Promise<ImageRow> {
  const store = opts.store;
  const prior = store.remote(url);
  const priorRow = prior ? store.get(prior.key) : undefined;
  if (priorRow) {
    if (opts.pullPolicy !== 'update') return priorRow;
    if (prior && prior.cacheMaxAge && prior.downloadTime + prior.cacheMaxAge * 1000 > Date.now()) {
      debug(`using cached ${url} (max-age not expired)`);
      return priorRow;
    }
  } else if (opts.pullPolicy === 'never') {
    throw new RktError('NOT_FOUND', `image ${url} is not in the store and --pull-policy=never`);
  }
  const http = httpOptions(opts.global);
  const tmp = store.makeTmpDir();
  try {
    const file = join(tmp, 'download.aci');
    const { downloadToFile, fetchBuffer } = await import('./http.ts');
    const dl = await downloadToFile(url, file, { ...http, etag: priorRow ? prior?.etag : null, label: expect?.name ?? url });
    if (dl.status === 304 && priorRow) {
      store.putRemote({ ...(prior as NonNullable<typeof prior>), downloadTime: Date.now(), cacheMaxAge: dl.maxAge });
      return priorRow;
    }
    let signature: string | undefined;
    if (opts.signature) signature = readSignatureFile(opts.signature);
    else if (!opts.global.insecure.has('image')) {
      const r = await fetchBuffer(ascUrl, http, [404, 410]);
      signature = r.status === 200 ? r.body.toString('utf8') : undefined;
    }
    const row = await verifyAndImport(opts, { path: file, signature, origin: url, ...(expect ? { expect } : {}) });
    store.putRemote({ url, sigUrl: ascUrl, etag: dl.etag, key: row.key, cacheMaxAge: dl.maxAge, downloadTime: Date.now() });
    return row;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function readSignatureFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new RktError('NOT_FOUND', `cannot read signature file ${path}: ${isErrno(e, 'ENOENT') ? 'no such file' : (e as Error).message}`);
  }
}

async function fetchByName(opts: FetchOptions, name: string, labels: readonly Label[], policy: PullPolicy): Promise<ImageRow> {
  if (policy !== 'update') {
    const hit = opts.store.byName(name, labels)[0];
    if (hit) return hit;
    if (policy === 'never') throw new RktError('NOT_FOUND', `image "${name}" is not in the store and --pull-policy=never`);
  }
  const { discover } = await import('./discovery.ts');
  const found = await discover(name, labels, httpOptions(opts.global));
  const ep = found.endpoints[0] as { aci: string; asc: string };
  debug(`discovered ${name} at ${ep.aci}`);
  return fetchUrl({ ...opts, pullPolicy: policy }, ep.aci, ep.asc, { name, labels });
}

async function fetchFile(opts: FetchOptions, path: string): Promise<ImageRow> {
  if (!existsSync(path)) throw new RktError('NOT_FOUND', `image file ${path} does not exist`);
  let signature: string | undefined;
  if (opts.signature) signature = readSignatureFile(opts.signature);
  else if (existsSync(`${path}.asc`)) signature = readFileSync(`${path}.asc`, 'utf8');
  return verifyAndImport(opts, { path, signature, origin: path });
}

/** Resolves (and fetches as needed) one image; marks it used. */
export async function fetchImage(raw: string, opts: FetchOptions): Promise<ImageRow> {
  const ref = parseImageRef(raw);
  let row: ImageRow;
  switch (ref.kind) {
    case 'id':
      row = findStored(opts.store, raw);
      break;
    case 'file':
      row = await fetchFile(opts, ref.path);
      break;
    case 'url':
      row = await fetchUrl(opts, ref.url, opts.signature ? '' : `${ref.url}.asc`);
      break;
    case 'name':
      row = await fetchByName(opts, ref.name, ref.labels, opts.pullPolicy);
      break;
    case 'docker': {
      const { fetchDocker } = await import('../docker/pull.ts');
      row = await fetchDocker(ref.transport, ref.ref, raw, opts);
      opts.store.markUsed(row);
      debug(`image ${raw} is ${row.key}`);
      return row;
    }
  }
  opts.store.markUsed(row);
  if (row.manifest.dependencies?.length && !row.treeId) await renderImage(opts.store, row);
  debug(`image ${displayName(row.manifest)} is ${row.key}`);
  return row;
}

