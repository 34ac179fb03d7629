// Where a Docker/OCI image comes from: a registry, an OCI layout directory,
// an OCI archive or a `docker save` archive. Each resolves to the same
// thing: the image config, and per layer its diffID, expected digest,
// compression and a way to open its bytes.
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { RktError, errMessage } from '../../lib/errors.ts';
import { detectCompression } from '../decompress.ts';
import {
  digestOf, hostPlatform, parseConfig, parseManifest, selectPlatform,
  type Compression, type Descriptor, type ImageConfig, type ImageManifestV2,
} from './manifest.ts';
import { parseDockerRef, resolveLocalSpec, sanitizeIdentifier, type DockerRef } from './reference.ts';
import type { Registry } from './registry.ts';
import { indexTar, type TarMember } from './tarindex.ts';

export interface LayerSource {
  /** Expected digest of the raw bytes (undefined: only the diffID is checked, as in docker-save archives). */
  digest: string | undefined;
  size: number | undefined;
  compression: Compression;
  diffId: string;
  mediaType: string;
  open(): Promise<Readable>;
  /** Network source: failures may be retried. */
  remote: boolean;
}

export interface Naming {
  /** AC identifier. */
  name: string;
  version: string;
  registry: string;
  repository: string;
  /** As the user would write it: `registry/repo:tag`. */
  originalName: string;
}

export interface ResolvedImage {
  /** Digest of the top-level manifest (or index) as stored; remote "ETag". */
  topDigest: string;
  manifestDigest: string;
  config: ImageConfig;
  configDigest: string;
  layers: LayerSource[];
  naming: Naming;
}

function checkConfigPlatform(config: ImageConfig, what: string): void {
  const want = hostPlatform();
  const os = config.os ?? 'linux';
  const arch = config.architecture ?? want.architecture;
  if (os !== want.os || arch !== want.architecture) {
    throw new RktError('OS_ARCH', `${what} is for ${os}/${arch}${config.variant ? `/${config.variant}` : ''}, this host is ${want.os}/${want.architecture}`);
  }
}

function layersOf(m: ImageManifestV2, config: ImageConfig, what: string, open: (d: Descriptor) => Promise<Readable>, remote: boolean): LayerSource[] {
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== m.layers.length) {
    throw new RktError('INVALID_IMAGE', `malformed image ${what}: ${m.layers.length} layer(s) in the manifest but ${diffIds.length} diff_id(s) in the config`);
  }
  return m.layers.map((l, i) => ({
    digest: l.digest,
    size: l.size,
    compression: l.compression,
    diffId: diffIds[i] as string,
    mediaType: l.mediaType,
    remote,
    open: () => open(l),
  }));
}

/** Follows an index to this host's manifest; returns the image manifest and its digest. */
async function imageManifest(top: { body: Buffer; contentType: string; digest: string }, fetchByDigest: (d: Descriptor) => Promise<{ body: Buffer; contentType: string }>): Promise<{ manifest: ImageManifestV2; digest: string }> {
  let parsed = parseManifest(top.body, top.contentType);
  let digest = top.digest;
  for (let depth = 0; parsed.kind === 'index'; depth++) {
    if (depth > 2) throw new RktError('INVALID_IMAGE', 'malformed manifest list: nested too deeply');
    const d = selectPlatform(parsed.index, hostPlatform());
    const sub = await fetchByDigest(d);
    const got = digestOf(sub.body);
    if (got !== d.digest) throw new RktError('INVALID_IMAGE', `manifest ${d.digest}: digest mismatch (got ${got})`);
    parsed = parseManifest(sub.body, d.mediaType || sub.contentType);
    digest = d.digest;
  }
  return { manifest: parsed.manifest, digest };
}

// --- registry -----------------------------------------------------------------

export async function resolveRegistry(reg: Registry, ref: DockerRef, top?: { body: Buffer; contentType: string; digest: string }): Promise<ResolvedImage> {
  const reference = ref.digest ?? ref.tag ?? 'latest';
  top ??= await reg.manifest(reference);
  const { manifest, digest } = await imageManifest(top, (d) => reg.manifest(d.digest));
  const configBytes = await reg.blobBuffer(manifest.config);
  const config = parseConfig(configBytes);
  const what = `${ref.registry}/${ref.repository}:${reference}`;
  checkConfigPlatform(config, `image ${what}`);
  const version = ref.tag ?? ref.digest ?? 'latest';
  return {
    topDigest: top.digest,
    manifestDigest: digest,
    config,
    configDigest: manifest.config.digest,
    layers: layersOf(manifest, config, what, (d) => reg.blob(d), true),
    naming: {
      name: sanitizeIdentifier(`${ref.registry}/${ref.repository}`),
      version,
      registry: ref.registry,
      repository: ref.repository,
      originalName: `${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${version}`}`,
    },
  };
}

// --- local files ---------------------------------------------------------------

function sniff(path: string, offset: number): Compression {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(8);
    const n = readSync(fd, b, 0, 8, offset);
    const c = detectCompression(b.subarray(0, n));
    if (c === 'bzip2' || c === 'xz') throw new RktError('INVALID_IMAGE', `unsupported layer compression ${c} in ${path}`);
    return c;
  } finally {
    closeSync(fd);
  }
}

function fileStream(path: string, offset = 0, size?: number): Promise<Readable> {
  return Promise.resolve(createReadStream(path, { start: offset, ...(size !== undefined ? { end: offset + size - 1 } : {}), highWaterMark: 1 << 20 }));
}

/** Blob access for an OCI layout, as a directory or a tar of one. */
interface Layout {
  read(rel: string, limit: number): Buffer;
  open(rel: string): Promise<Readable>;
  has(rel: string): boolean;
}

function dirLayout(dir: string): Layout {
  return {
    read: (rel, limit) => {
      const p = join(dir, rel);
      if (statSync(p).size > limit) throw new RktError('INVALID_IMAGE', `${p} is too large`);
      return readFileSync(p);
    },
    open: (rel) => fileStream(join(dir, rel)),
    has: (rel) => existsSync(join(dir, rel)),
  };
}

function tarLayout(path: string, members: Map<string, TarMember>): Layout {
  const get = (rel: string) => {
    const m = members.get(rel);
    if (!m) throw new RktError('BAD_ARCHIVE', `archive ${path} has no "${rel}"`);
    return m;
  };
  return {
    read: (rel, limit) => {
      const m = get(rel);
      if (m.size > limit) throw new RktError('INVALID_IMAGE', `"${rel}" in ${path} is too large`);
      const fd = openSync(path, 'r');
      try {
        const b = Buffer.alloc(m.size);
        if (readSync(fd, b, 0, m.size, m.offset) !== m.size) throw new RktError('BAD_ARCHIVE', `truncated archive ${path}`);
        return b;
      } finally {
        closeSync(fd);
      }
    },
    open: (rel) => {
      const m = get(rel);
      return fileStream(path, m.offset, m.size);
    },
    has: (rel) => members.has(rel),
  };
}

function blobPath(digest: string): string {
  const [alg, hex] = digest.split(':');
  return `blobs/${alg}/${hex}`;
}

function verified(layout: Layout, d: Descriptor, what: string): Buffer {
  if (!layout.has(blobPath(d.digest))) throw new RktError('BAD_ARCHIVE', `${what}: blob ${d.digest} is missing`);
  const b = layout.read(blobPath(d.digest), 16 << 20);
  const got = digestOf(b);
  if (got !== d.digest) throw new RktError('INVALID_IMAGE', `${what}: blob ${d.digest}: digest mismatch (got ${got})`);
  return b;
}

export async function resolveOci(transport: 'oci' | 'oci-archive', spec: string): Promise<ResolvedImage> {
  const { path, ref } = resolveLocalSpec(spec, existsSync);
  if (!existsSync(path)) throw new RktError('NOT_FOUND', `${transport}: ${path} does not exist`);
  let layout: Layout;
  if (transport === 'oci') {
    if (!statSync(path).isDirectory()) throw new RktError('USAGE', `oci: ${path} is not a directory (use oci-archive: for a tar)`);
    layout = dirLayout(path);
  } else {
    layout = tarLayout(path, indexTar(path));
  }
  const what = `${transport}:${path}`;
  if (!layout.has('index.json')) throw new RktError('BAD_ARCHIVE', `${what} is not an OCI image layout: no index.json`);
  const indexBytes = layout.read('index.json', 4 << 20);
  const top = parseManifest(indexBytes, 'application/vnd.oci.image.index.v1+json');
  if (top.kind !== 'index') throw new RktError('INVALID_IMAGE', `malformed ${what}/index.json: not an image index`);
  const refName = (d: Descriptor) => d.annotations?.['org.opencontainers.image.ref.name'];
  let chosen: Descriptor | undefined;
  if (ref !== undefined) chosen = top.index.manifests.find((d) => refName(d) === ref);
  else if (top.index.manifests.length === 1) chosen = top.index.manifests[0];
  else chosen = top.index.manifests.find((d) => refName(d) === 'latest');
  if (!chosen) {
    const refs = top.index.manifests.map(refName).filter((r) => r !== undefined);
    throw new RktError('NOT_FOUND', `${what}: no image ${ref !== undefined ? `named "${ref}"` : 'chosen'} in the layout (it has: ${refs.join(', ') || 'unnamed images'})`, { hint: `name one as ${transport}:${path}:REF` });
  }
  const body = verified(layout, chosen, what);
  const { manifest, digest } = await imageManifest({ body, contentType: chosen.mediaType, digest: chosen.digest }, (d) => Promise.resolve({ body: verified(layout, d, what), contentType: d.mediaType }));
  const config = parseConfig(verified(layout, manifest.config, what));
  checkConfigPlatform(config, `image ${what}`);
  const base = basename(path).replace(/\.(tar|oci)$/, '');
  return {
    topDigest: chosen.digest,
    manifestDigest: digest,
    config,
    configDigest: manifest.config.digest,
    layers: layersOf(manifest, config, what, (d) => {
      if (!layout.has(blobPath(d.digest))) return Promise.reject(new RktError('BAD_ARCHIVE', `${what}: layer ${d.digest} is missing`));
      return layout.open(blobPath(d.digest));
    }, false),
    naming: { name: sanitizeIdentifier(base), version: ref ?? 'latest', registry: '', repository: base, originalName: `${transport}:${path}${ref ? `:${ref}` : ''}` },
  };
}

export async function resolveDockerArchive(spec: string): Promise<ResolvedImage> {
  const { path, ref } = resolveLocalSpec(spec, existsSync);
  if (!existsSync(path)) throw new RktError('NOT_FOUND', `docker-archive: ${path} does not exist`);
  const what = `docker-archive:${path}`;
  const members = indexTar(path);
  const layout = tarLayout(path, members);
  if (!members.has('manifest.json')) throw new RktError('BAD_ARCHIVE', `${what} is not a docker save archive: no manifest.json`);
  let entries: { Config?: string; RepoTags?: string[] | null; Layers?: string[] }[];
  try {
    entries = JSON.parse(layout.read('manifest.json', 4 << 20).toString('utf8')) as typeof entries;
    if (!Array.isArray(entries)) throw new Error('not a JSON array');
  } catch (e) {
    throw new RktError('BAD_ARCHIVE', `${what}: malformed manifest.json: ${errMessage(e)}`);
  }
  let entry = entries[0];
  if (ref !== undefined) {
    if (/^@\d+$/.test(ref)) entry = entries[Number(ref.slice(1))];
    else entry = entries.find((e) => (e.RepoTags ?? []).some((t) => t === ref || t.endsWith(`/${ref}`)));
  }
  if (!entry) throw new RktError('NOT_FOUND', `${what}: no image ${ref ? `"${ref}" ` : ''}in the archive`);
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) throw new RktError('BAD_ARCHIVE', `${what}: malformed manifest.json entry`);
  const configName = entry.Config;
  if (!members.has(configName)) throw new RktError('BAD_ARCHIVE', `${what}: config ${configName} is missing`);
  const configBytes = layout.read(configName, 16 << 20);
  const config = parseConfig(configBytes);
  checkConfigPlatform(config, `image ${what}`);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== entry.Layers.length) throw new RktError('BAD_ARCHIVE', `${what}: ${entry.Layers.length} layer(s) but ${diffIds.length} diff_id(s) in the config`);
  const layers: LayerSource[] = entry.Layers.map((name, i) => {
    const m = members.get(name);
    if (!m) throw new RktError('BAD_ARCHIVE', `${what}: layer ${name} is missing`);
    return { digest: undefined, size: undefined, compression: sniff(path, m.offset), diffId: diffIds[i] as string, mediaType: 'application/vnd.docker.image.rootfs.diff.tar', remote: false, open: () => fileStream(path, m.offset, m.size) };
  });
  const tag = (entry.RepoTags ?? [])[0];
  let naming: Naming;
  const configDigest = digestOf(configBytes);
  if (tag) {
    const r = parseDockerRef(tag);
    const version = r.tag ?? 'latest';
    naming = { name: sanitizeIdentifier(`${r.registry}/${r.repository}`), version, registry: r.registry, repository: r.repository, originalName: `${r.registry}/${r.repository}:${version}` };
  } else {
    const base = basename(path).replace(/\.tar$/, '');
    naming = { name: sanitizeIdentifier(base), version: 'latest', registry: '', repository: base, originalName: what };
  }
  return { topDigest: configDigest, manifestDigest: configDigest, config, configDigest, layers, naming };
}
