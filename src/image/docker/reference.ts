// Docker and OCI image references (pure):
//   docker://[REGISTRY[:PORT]/]NAME[:TAG|@DIGEST]   docker:NAME (same)
//   docker-archive:PATH[:REF]   a `docker save` tarball
//   oci:DIR[:REF]               an OCI image layout directory
//   oci-archive:PATH[:REF]      a tar of an OCI image layout
// Docker's defaults: registry-1.docker.io, `library/` for one-component
// names there, tag `latest`.
import { RktError } from '../../lib/errors.ts';

export type Transport = 'docker' | 'docker-archive' | 'oci' | 'oci-archive';

export const DOCKER_HUB = 'registry-1.docker.io';

export interface DockerRef {
  /** Host[:port] to talk to (docker.io and index.docker.io map to registry-1.docker.io). */
  registry: string;
  /** Repository path, e.g. `library/busybox`. */
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

export interface LocalRef {
  /** The file or directory (may itself contain ':'; resolved against the filesystem later). */
  spec: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Splits a transport prefix off an image argument; undefined if it has none of ours. */
export function splitTransport(raw: string): { transport: Transport; rest: string } | undefined {
  for (const [prefix, transport] of [
    ['docker://', 'docker'],
    ['docker-archive:', 'docker-archive'],
    ['oci-archive:', 'oci-archive'],
    ['oci:', 'oci'],
    ['docker:', 'docker'],
  ] as const) {
    if (raw.startsWith(prefix)) return { transport, rest: raw.slice(prefix.length) };
  }
  return undefined;
}

/** Parses `[REGISTRY[:PORT]/]NAME[:TAG|@DIGEST]` with Docker's defaults. */
export function parseDockerRef(s: string): DockerRef {
  const bad = (why: string) => new RktError('USAGE', `invalid docker image reference "${s}": ${why}`);
  if (s === '') throw bad('empty');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`bad digest "${digest}" (expected sha256:<64 hex>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`bad tag "${tag}"`);
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[') || /[A-Z]/.test(first)) {
      if (!HOST.test(first)) throw bad(`bad registry host "${first}"`);
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  if (registry === 'docker.io' || registry === 'index.docker.io') registry = DOCKER_HUB;
  if (rest === '') throw bad('no repository name');
  const parts = rest.split('/');
  for (const p of parts) if (!COMPONENT.test(p)) throw bad(`bad repository name component "${p}" (lowercase letters, digits and separators)`);
  if (registry === DOCKER_HUB && parts.length === 1) rest = `library/${rest}`;
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: rest, tag, digest };
}

/** The canonical form `registry/repository[:tag][@digest]`. */
export function formatDockerRef(r: DockerRef): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** What the user may name a Docker image by: `registry/repo:tag`, short forms for Docker Hub. */
export function dockerDisplayName(registry: string, repository: string, tagOrDigest: string | undefined): string {
  const sep = tagOrDigest?.includes(':') ? '@' : ':';
  return `${registry}/${repository}${tagOrDigest ? `${sep}${tagOrDigest}` : ''}`;
}

/** Parses a transport reference. Local paths stay unresolved (see resolveLocalSpec). */
export function parseTransportRef(transport: Transport, rest: string): { transport: 'docker'; ref: DockerRef } | { transport: Exclude<Transport, 'docker'>; local: LocalRef } {
  if (transport === 'docker') {
    return { transport, ref: parseDockerRef(rest.startsWith('//') ? rest.slice(2) : rest) };
  }
  if (rest === '') throw new RktError('USAGE', `invalid ${transport} reference: no path given`);
  return { transport, local: { spec: rest } };
}

/**
 * Splits `PATH[:REF]` given which prefixes exist on disk: the whole string if
 * it exists, else the longest existing prefix ending before a ':'.
 */
export function resolveLocalSpec(spec: string, exists: (p: string) => boolean): { path: string; ref: string | undefined } {
  if (exists(spec)) return { path: spec, ref: undefined };
  for (let i = spec.lastIndexOf(':'); i > 0; i = spec.lastIndexOf(':', i - 1)) {
    const p = spec.slice(0, i);
    if (exists(p)) return { path: p, ref: spec.slice(i + 1) || undefined };
  }
  return { path: spec, ref: undefined };
}

/** Turns any name into an AC Identifier (lowercase; other characters become '-'; no doubled separators). */
export function sanitizeIdentifier(s: string): string {
  let out = s.toLowerCase().replace(/[^a-z0-9\-._~/]/g, '-');
  out = out.replace(/([-._~/])[-._~/]+/g, '$1');
  out = out.replace(/^[-._~/]+|[-._~/]+$/g, '');
  return out === '' ? 'image' : out;
}

/** Turns a path into an AC Name (`/var/lib/data` → `var-lib-data`). */
export function sanitizeName(s: string): string {
  const out = s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return out === '' ? 'root' : out;
}
