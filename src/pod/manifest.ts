// appc PodManifest (spec/pods.md) types, and the pure parts of building one
// from images and flags: app names, volumes, mounts, key=value lists.
import type { AppSpec } from '../image/aci/manifest.ts';
import { AC_NAME, type Label } from '../image/aci/labels.ts';
import { APPC_VERSION } from '../lib/version.ts';
import { RktError, usage } from '../lib/errors.ts';

export interface NameValue {
  name: string;
  value: string;
}

export interface Volume {
  name: string;
  kind: 'host' | 'empty';
  source?: string;
  readOnly?: boolean;
  recursive?: boolean;
  mode?: string;
  uid?: number;
  gid?: number;
}

export interface RuntimeApp {
  name: string;
  image: { name: string; id: string; labels: Label[] };
  app: AppSpec;
  readOnlyRootFS?: boolean;
  mounts: { volume: string; path: string }[];
  annotations: NameValue[];
}

export interface PodManifest {
  acKind: 'PodManifest';
  acVersion: string;
  apps: RuntimeApp[];
  volumes: Volume[];
  isolators: unknown[];
  annotations: NameValue[];
  ports: unknown[];
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
}

/** The pod-level fields a --pod-manifest gives as they are written. */
export type PodFields = Pick<PodManifest, 'acVersion' | 'isolators' | 'annotations' | 'ports' | 'userAnnotations' | 'userLabels'>;

export function emptyPodManifest(): PodManifest {
  return { acKind: 'PodManifest', acVersion: APPC_VERSION, apps: [], volumes: [], isolators: [], annotations: [], ports: [] };
}

/** The default app name: the image name's last path component, made a valid AC Name. */
export function defaultAppName(imageName: string): string {
  const base = imageName.split('/').at(-1) ?? imageName;
  const name = base.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return name === '' ? 'app' : name;
}

export function checkAppName(name: string): string {
  if (!AC_NAME.test(name)) throw usage(`invalid app name "${name}": use lowercase letters, digits and dashes`);
  return name;
}

function parseBool(v: string, what: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw usage(`invalid ${what} "${v}": expected true or false`);
}

/** `NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL]` or `NAME,kind=empty[,mode=0755][,uid=N][,gid=N]`. */
export function parseVolume(spec: string): Volume {
  const [name = '', ...rest] = spec.split(',');
  if (!AC_NAME.test(name)) throw usage(`invalid volume "${spec}": "${name}" is not a valid volume name`);
  const kv: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw usage(`invalid volume "${spec}": "${p}" is not KEY=VALUE`);
    kv[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const kind = kv.kind;
  if (kind === 'host') {
    const source = kv.source;
    if (!source || !source.startsWith('/')) throw usage(`invalid volume "${spec}": kind=host needs an absolute source=PATH`);
    const v: Volume = { name, kind, source };
    if (kv.readOnly !== undefined) v.readOnly = parseBool(kv.readOnly, 'readOnly');
    if (kv.recursive !== undefined) v.recursive = parseBool(kv.recursive, 'recursive');
    for (const k of Object.keys(kv)) if (!['kind', 'source', 'readOnly', 'recursive'].includes(k)) throw usage(`invalid volume "${spec}": unknown parameter "${k}"`);
    return v;
  }
  if (kind === 'empty') {
    const v: Volume = { name, kind };
    if (kv.readOnly !== undefined) v.readOnly = parseBool(kv.readOnly, 'readOnly');
    if (kv.mode !== undefined) {
      if (!/^0?[0-7]{3,4}$/.test(kv.mode)) throw usage(`invalid volume "${spec}": mode must be octal`);
      v.mode = kv.mode;
    }
    for (const k of ['uid', 'gid'] as const) {
      if (kv[k] !== undefined) {
        if (!/^\d+$/.test(kv[k] as string)) throw usage(`invalid volume "${spec}": ${k} must be a number`);
        v[k] = Number(kv[k]);
      }
    }
    for (const k of Object.keys(kv)) if (!['kind', 'readOnly', 'mode', 'uid', 'gid'].includes(k)) throw usage(`invalid volume "${spec}": unknown parameter "${k}"`);
    return v;
  }
  throw usage(`invalid volume "${spec}": kind must be host or empty`);
}

/** `volume=NAME,target=PATH`. */
export function parseMount(spec: string): { volume: string; path: string } {
  const kv: Record<string, string> = {};
  for (const p of spec.split(',')) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw usage(`invalid --mount "${spec}": expected volume=NAME,target=PATH`);
    kv[p.slice(0, eq)] = p.slice(eq + 1);
  }
  if (!kv.volume || !kv.target) throw usage(`invalid --mount "${spec}": expected volume=NAME,target=PATH`);
  if (!kv.target.startsWith('/')) throw usage(`invalid --mount "${spec}": target must be an absolute path`);
  return { volume: kv.volume, path: kv.target };
}

/**
 * Mount points of an app: the image's mountPoints, overridden/extended by
 * --mount (keyed by path). Mount points without a volume get an implicit
 * empty volume named `<app>-<mountpoint>` (rkt's behaviour, with a warning).
 */
export function resolveMounts(
  appName: string,
  imageMountPoints: readonly { name: string; path: string; readOnly?: boolean | undefined }[],
  cliMounts: readonly { volume: string; path: string }[],
  volumes: Volume[],
  warn: (msg: string) => void,
): { volume: string; path: string }[] {
  const byPath = new Map<string, { volume: string; path: string }>();
  for (const mp of imageMountPoints) byPath.set(mp.path, { volume: mp.name, path: mp.path });
  for (const m of cliMounts) {
    if (!volumes.some((v) => v.name === m.volume)) throw new RktError('USAGE', `--mount names volume "${m.volume}", which no --volume defines`);
    byPath.set(m.path, m);
  }
  const out: { volume: string; path: string }[] = [];
  for (const m of byPath.values()) {
    if (!volumes.some((v) => v.name === m.volume)) {
      const implicit = `${appName}-${m.volume}`;
      const ro = imageMountPoints.find((p) => p.path === m.path)?.readOnly;
      warn(`rkt: warning: no volume specified for mount point "${m.volume}" of app "${appName}", using an empty volume "${implicit}"`);
      if (!volumes.some((v) => v.name === implicit)) volumes.push({ name: implicit, kind: 'empty', ...(ro ? { readOnly: true } : {}) });
      out.push({ volume: implicit, path: m.path });
    } else out.push(m);
  }
  return out;
}
