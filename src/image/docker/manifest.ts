// Docker v2 schema 2 and OCI image manifests, manifest lists / OCI indexes
// and image configs: parsing, validation, platform choice, chain IDs. Pure.
import { createHash } from 'node:crypto';
import { RktError } from '../../lib/errors.ts';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
} as const;

export const ACCEPT = [MT.ociIndex, MT.dockerList, MT.ociManifest, MT.dockerManifest].join(', ');

export type Compression = 'gzip' | 'zstd' | 'none';

const LAYER_TYPES: Record<string, { compression: Compression; foreign: boolean }> = {
  'application/vnd.docker.image.rootfs.diff.tar.gzip': { compression: 'gzip', foreign: false },
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': { compression: 'gzip', foreign: true },
  'application/vnd.docker.image.rootfs.diff.tar': { compression: 'none', foreign: false },
  'application/vnd.oci.image.layer.v1.tar': { compression: 'none', foreign: false },
  'application/vnd.oci.image.layer.v1.tar+gzip': { compression: 'gzip', foreign: false },
  'application/vnd.oci.image.layer.v1.tar+zstd': { compression: 'zstd', foreign: false },
  'application/vnd.oci.image.layer.nondistributable.v1.tar': { compression: 'none', foreign: true },
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': { compression: 'gzip', foreign: true },
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': { compression: 'zstd', foreign: true },
};

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageManifestV2 {
  mediaType: string;
  config: Descriptor;
  layers: (Descriptor & { compression: Compression; foreign: boolean })[];
}

export interface ImageIndex {
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, unknown>;
    Env?: string[] | null;
    Entrypoint?: string[] | string | null;
    Cmd?: string[] | string | null;
    Volumes?: Record<string, unknown> | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
  };
  rootfs?: { type?: string; diff_ids?: string[] };
  history?: { comment?: string; empty_layer?: boolean }[];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function invalid(what: string, why: string): RktError {
  return new RktError('INVALID_IMAGE', `malformed ${what}: ${why}`);
}

export function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function parseJson(data: Buffer | string, what: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch (e) {
    throw invalid(what, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw invalid(what, 'not a JSON object');
  return j as Record<string, unknown>;
}

function descriptor(d: unknown, what: string): Descriptor {
  if (typeof d !== 'object' || d === null) throw invalid(what, 'descriptor is not an object');
  const o = d as Record<string, unknown>;
  if (typeof o.digest !== 'string' || !DIGEST.test(o.digest)) throw invalid(what, `bad or unsupported digest ${JSON.stringify(o.digest)} (sha256 expected)`);
  if (typeof o.size !== 'number' || !Number.isInteger(o.size) || o.size < 0) throw invalid(what, `bad size for ${o.digest}`);
  const out: Descriptor = { mediaType: typeof o.mediaType === 'string' ? o.mediaType : '', digest: o.digest, size: o.size };
  if (Array.isArray(o.urls)) out.urls = o.urls.filter((u): u is string => typeof u === 'string');
  if (typeof o.platform === 'object' && o.platform !== null) {
    const p = o.platform as Record<string, unknown>;
    out.platform = { os: String(p.os ?? ''), architecture: String(p.architecture ?? ''), ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  if (typeof o.annotations === 'object' && o.annotations !== null) out.annotations = o.annotations as Record<string, string>;
  return out;
}

/** Parses a manifest or index; `contentType` is the registry's Content-Type (may be empty). */
export function parseManifest(data: Buffer, contentType = ''): { kind: 'manifest'; manifest: ImageManifestV2 } | { kind: 'index'; index: ImageIndex } {
  const j = parseJson(data, 'image manifest');
  const ct = contentType.split(';')[0]?.trim() ?? '';
  let mt = typeof j.mediaType === 'string' ? j.mediaType : '';
  if (mt === '') mt = ct && ct !== 'application/json' && ct !== 'application/octet-stream' ? ct : Array.isArray(j.manifests) ? MT.ociIndex : MT.ociManifest;
  if (j.schemaVersion === 1 || mt.startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw new RktError('INVALID_IMAGE', 'unsupported manifest: Docker schema 1 manifests are not supported (push the image again with a current client)');
  }
  if (j.schemaVersion !== 2) throw invalid('image manifest', `schemaVersion ${JSON.stringify(j.schemaVersion)} (2 expected)`);
  if (mt === MT.dockerList || mt === MT.ociIndex) {
    if (!Array.isArray(j.manifests)) throw invalid('manifest list', 'no "manifests" array');
    return { kind: 'index', index: { mediaType: mt, manifests: j.manifests.map((d) => descriptor(d, 'manifest list')) } };
  }
  if (mt !== MT.dockerManifest && mt !== MT.ociManifest) throw new RktError('INVALID_IMAGE', `unsupported manifest media type "${mt}"`);
  const config = descriptor(j.config, 'image manifest');
  if (!Array.isArray(j.layers)) throw invalid('image manifest', 'no "layers" array');
  const layers = j.layers.map((l) => {
    const d = descriptor(l, 'image manifest');
    const t = LAYER_TYPES[d.mediaType];
    if (!t) throw new RktError('INVALID_IMAGE', `unsupported layer media type "${d.mediaType}" (layer ${d.digest})`);
    return { ...d, ...t };
  });
  if (config.mediaType !== '' && config.mediaType !== MT.dockerConfig && config.mediaType !== MT.ociConfig) {
    throw new RktError('INVALID_IMAGE', `unsupported config media type "${config.mediaType}" (not a container image)`);
  }
  return { kind: 'manifest', manifest: { mediaType: mt, config, layers } };
}

/** Go's GOARCH/variant of this host. */
export function hostPlatform(): Platform {
  const map: Record<string, Platform> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ia32: { os: 'linux', architecture: '386' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
  };
  return map[process.arch] ?? { os: 'linux', architecture: process.arch };
}

/** Picks the manifest for `want` from an index: os and architecture must match; variant if both give one. */
export function selectPlatform(index: ImageIndex, want: Platform): Descriptor {
  const candidates = index.manifests.filter((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture);
  const exact = candidates.find((m) => (m.platform?.variant ?? '') === (want.variant ?? ''));
  const loose = candidates.find((m) => !m.platform?.variant || !want.variant);
  const pick = exact ?? loose ?? (want.architecture === 'arm64' ? candidates[0] : undefined);
  if (!pick) {
    const have = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : 'unknown')).join(', ');
    throw new RktError('OS_ARCH', `no image for this host's platform ${want.os}/${want.architecture}${want.variant ? `/${want.variant}` : ''} in the manifest list (it has: ${have || 'nothing'})`);
  }
  return pick;
}

export function parseConfig(data: Buffer): ImageConfig {
  const j = parseJson(data, 'image config') as ImageConfig;
  const ids = j.rootfs?.diff_ids;
  if (!Array.isArray(ids)) throw invalid('image config', 'no rootfs.diff_ids');
  for (const id of ids) if (typeof id !== 'string' || !DIGEST.test(id)) throw invalid('image config', `bad diff_id ${JSON.stringify(id)}`);
  if (j.config !== undefined && (typeof j.config !== 'object' || j.config === null)) throw invalid('image config', '"config" is not an object');
  return j;
}

/** ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out.at(-1);
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}
