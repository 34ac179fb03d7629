// Docker/OCI image config → appc ImageManifest, after docker2aci
// (lib/internal/internal.go). Pure.
import type { ImageManifest } from '../aci/manifest.ts';
import type { ImageConfig } from './manifest.ts';
import { sanitizeName } from './reference.ts';

export const ANN = {
  entrypoint: 'appc.io/docker/entrypoint',
  cmd: 'appc.io/docker/cmd',
  registry: 'appc.io/docker/registryurl',
  repository: 'appc.io/docker/repository',
  tag: 'appc.io/docker/tag',
  imageId: 'appc.io/docker/imageid',
  manifestHash: 'appc.io/docker/manifesthash',
  originalName: 'appc.io/docker/originalname',
  diffId: 'appc.io/docker/diffid',
  chainId: 'appc.io/docker/chainid',
} as const;

const ARCH: Record<string, string> = { amd64: 'amd64', '386': 'i386', arm64: 'aarch64', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** appc arch label for a Go GOARCH (+ variant). */
export function appcArch(arch: string | undefined, variant: string | undefined): string {
  if (arch === 'arm') return variant === 'v6' ? 'armv6l' : 'armv7l';
  return ARCH[arch ?? 'amd64'] ?? arch ?? 'amd64';
}

function list(v: string[] | string | null | undefined): string[] {
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/** `u[:g]` → user, group; empty → 0/0; a lone user leaves the group to its passwd entry (''). */
export function splitUser(u: string | undefined): { user: string; group: string } {
  if (!u) return { user: '0', group: '0' };
  const i = u.indexOf(':');
  if (i < 0) return { user: u, group: '' };
  return { user: u.slice(0, i) || '0', group: u.slice(i + 1) || '0' };
}

export function convertPorts(exposed: Record<string, unknown> | undefined): { name: string; protocol: string; port: number; count?: number }[] {
  const out: { name: string; protocol: string; port: number; count?: number }[] = [];
  for (const key of Object.keys(exposed ?? {})) {
    const [range = '', proto = 'tcp'] = key.split('/');
    const [lo, hi] = range.split('-').map(Number);
    if (lo === undefined || !Number.isInteger(lo) || lo < 0 || lo > 65535) continue;
    const p: { name: string; protocol: string; port: number; count?: number } = { name: `${lo}-${proto.toLowerCase()}`, protocol: proto.toLowerCase(), port: lo };
    if (hi !== undefined && Number.isInteger(hi) && hi > lo) p.count = hi - lo + 1;
    out.push(p);
  }
  return out.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

export function convertVolumes(volumes: Record<string, unknown> | null | undefined): { name: string; path: string }[] {
  const paths = Object.keys(volumes ?? {}).map((p) => (p.startsWith('/') ? p : `/${p}`)).sort();
  const seen = new Map<string, number>();
  return paths.map((path) => {
    let name = `volume-${sanitizeName(path)}`;
    const n = seen.get(name) ?? 0;
    seen.set(name, n + 1);
    if (n > 0) name = `${name}-${n}`;
    return { name, path };
  });
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ConvertInput {
  config: ImageConfig;
  /** Sanitized AC identifier. */
  name: string;
  /** version label (tag, or the digest when pulled by digest). */
  version: string;
  registry: string;
  repository: string;
  originalName: string;
  configDigest: string;
  manifestDigest: string;
  topLayer: { name: string; key: string } | undefined;
}

export function convertConfig(i: ConvertInput): ImageManifest {
  const c = i.config.config ?? {};
  const entrypoint = list(c.Entrypoint);
  const cmd = list(c.Cmd);
  const { user, group } = splitUser(c.User);
  const env = (c.Env ?? [])
    .map((e) => {
      const eq = e.indexOf('=');
      return eq > 0 ? { name: e.slice(0, eq), value: e.slice(eq + 1) } : undefined;
    })
    .filter((e): e is { name: string; value: string } => e !== undefined && ENV_NAME.test(e.name));
  const dedup = new Map(env.map((e) => [e.name, e]));
  let wd = c.WorkingDir ?? '';
  if (wd !== '' && !wd.startsWith('/')) wd = `/${wd}`;
  const annotations: { name: string; value: string }[] = [
    { name: ANN.entrypoint, value: JSON.stringify(entrypoint) },
    { name: ANN.cmd, value: JSON.stringify(cmd) },
    { name: ANN.registry, value: i.registry },
    { name: ANN.repository, value: i.repository },
    { name: ANN.originalName, value: i.originalName },
    { name: ANN.imageId, value: i.configDigest },
    { name: ANN.manifestHash, value: i.manifestDigest },
    { name: ANN.tag, value: i.version },
  ];
  if (i.config.author) annotations.push({ name: 'authors', value: i.config.author });
  if (i.config.created) annotations.push({ name: 'created', value: i.config.created });
  const comment = i.config.history?.map((h) => h.comment ?? '').filter((s) => s !== '').at(-1);
  if (comment) annotations.push({ name: 'docker-comment', value: comment });
  const labels = Object.entries(c.Labels ?? {}).filter(([, v]) => typeof v === 'string');
  const ports = convertPorts(c.ExposedPorts);
  const mounts = convertVolumes(c.Volumes);
  return {
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name: i.name,
    labels: [
      { name: 'version', value: i.version },
      { name: 'os', value: i.config.os ?? 'linux' },
      { name: 'arch', value: appcArch(i.config.architecture, i.config.variant) },
    ],
    app: {
      exec: [...entrypoint, ...cmd],
      user,
      group,
      ...(wd ? { workingDirectory: wd } : {}),
      environment: [...dedup.values()],
      ...(mounts.length ? { mountPoints: mounts } : {}),
      ...(ports.length ? { ports } : {}),
      ...(labels.length ? { userLabels: Object.fromEntries(labels) } : {}),
    },
    annotations,
    ...(i.topLayer ? { dependencies: [{ imageName: i.topLayer.name, imageID: i.topLayer.key }] } : {}),
  } as ImageManifest;
}

/** The appc manifest of one layer entry, chained to its parent. */
export function layerManifest(o: { name: string; diffId: string; chainId: string; os: string; arch: string; parent: { name: string; key: string } | undefined }): ImageManifest {
  return {
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name: o.name,
    labels: [
      { name: 'os', value: o.os },
      { name: 'arch', value: o.arch },
    ],
    annotations: [
      { name: ANN.diffId, value: o.diffId },
      { name: ANN.chainId, value: o.chainId },
    ],
    ...(o.parent ? { dependencies: [{ imageName: o.parent.name, imageID: o.parent.key }] } : {}),
  } as ImageManifest;
}

/** Entrypoint and Cmd of a Docker-converted image (undefined for a native ACI). */
export function dockerExec(m: Pick<ImageManifest, 'annotations'>): { entrypoint: string[]; cmd: string[] } | undefined {
  const ep = m.annotations?.find((a) => a.name === ANN.entrypoint)?.value;
  const cmd = m.annotations?.find((a) => a.name === ANN.cmd)?.value;
  if (ep === undefined && cmd === undefined) return undefined;
  const parse = (s: string | undefined): string[] => {
    if (!s) return [];
    try {
      const v = JSON.parse(s) as unknown;
      return Array.isArray(v) ? v.map(String) : [];
    } catch {
      return [];
    }
  };
  return { entrypoint: parse(ep), cmd: parse(cmd) };
}

/** The process of a Docker-converted app, Docker's way: --exec replaces the entrypoint (and drops Cmd), args replace Cmd. */
export function dockerArgs(d: { entrypoint: string[]; cmd: string[] }, exec: string | undefined, args: string[] | undefined): string[] {
  const ep = exec ? [exec] : d.entrypoint;
  const cmd = args && args.length > 0 ? args : exec ? [] : d.cmd;
  return [...ep, ...cmd];
}
