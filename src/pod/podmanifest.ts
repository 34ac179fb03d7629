// `rkt run|prepare --pod-manifest=FILE`: the user's appc PodManifest
// (spec/pods.md), validated, and turned into what preparePod consumes: one
// AppArgs per app (as if typed on the command line) plus the app section
// that replaces the image's, the volumes, and the pod-level fields that go
// into the written manifest as given. Loaded only when the flag is given
// (its own bundle: valibot stays off the `rkt run IMAGE` path).
import { readFileSync } from 'node:fs';
import * as v from 'valibot';
import { absPath, acIdentifier, acName, appSchema, issuePath, kv, label, type AppSpec } from '../image/aci/manifest.ts';
import { RktError, usage } from '../lib/errors.ts';
import { exposedPortRequests, type PortRequest } from '../net/ports.ts';
import { APP_FLAGS, type AppArgs, type ParsedRun } from '../cli/apps.ts';
import { defaults } from '../cli/flags.ts';
import type { NameValue, PodFields, Volume } from './manifest.ts';

const list = <T extends v.GenericSchema>(item: T) => v.optional(v.nullable(v.array(item)));
const uint = v.pipe(v.number(), v.integer(), v.minValue(0));

const mountSchema = v.object({ volume: acName, path: absPath });

const volumeSchema = v.object({
  name: acName,
  kind: v.picklist(['host', 'empty']),
  source: v.optional(v.nullable(v.string())),
  readOnly: v.optional(v.nullable(v.boolean())),
  recursive: v.optional(v.nullable(v.boolean())),
  mode: v.optional(v.nullable(v.pipe(v.string(), v.regex(/^0?[0-7]{3,4}$/, 'is not an octal mode')))),
  uid: v.optional(v.nullable(uint)),
  gid: v.optional(v.nullable(uint)),
});

const runtimeAppSchema = v.object({
  name: acName,
  image: v.object({
    name: v.optional(v.nullable(acIdentifier)),
    id: v.pipe(v.string(), v.regex(/^sha512-[0-9a-f]+$/, 'is not an image ID (sha512-HEX)')),
    labels: list(label),
  }),
  app: v.optional(v.nullable(appSchema)),
  readOnlyRootFS: v.optional(v.nullable(v.boolean())),
  mounts: list(mountSchema),
  annotations: list(kv),
});

const podSchema = v.object({
  acKind: v.literal('PodManifest'),
  acVersion: v.pipe(v.string(), v.regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/, 'is not a valid semantic version')),
  apps: list(runtimeAppSchema),
  volumes: list(volumeSchema),
  isolators: list(v.object({ name: acIdentifier, value: v.unknown() })),
  annotations: list(kv),
  ports: list(v.object({ name: acName, hostPort: v.pipe(v.number(), v.integer()), hostIP: v.optional(v.nullable(v.string())) })),
  userAnnotations: v.optional(v.nullable(v.record(v.string(), v.string()))),
  userLabels: v.optional(v.nullable(v.record(v.string(), v.string()))),
});

type RawPod = v.InferOutput<typeof podSchema>;
type RawApp = v.InferOutput<typeof runtimeAppSchema>;
type RawVolume = v.InferOutput<typeof volumeSchema>;

/** One app of the pod manifest. */
export interface ManifestApp {
  name: string;
  imageId: string;
  /** The manifest's app section: replaces the image's whole app when given. */
  app: AppSpec | undefined;
  readOnlyRootFS: boolean;
  mounts: { volume: string; path: string }[];
  annotations: NameValue[];
}

export interface PodManifestInput {
  apps: ManifestApp[];
  volumes: Volume[];
  /** The manifest's `ports`, as forwarding requests. */
  ports: PortRequest[];
  fields: PodFields;
}

function invalid(file: string, msg: string, hint?: string): RktError {
  return new RktError('INVALID_MANIFEST', `invalid pod manifest ${file}: ${msg}`, hint ? { hint } : {});
}

function describeIssue(issue: v.BaseIssue<unknown>): string {
  const where = issuePath(issue) || '(root)';
  if (issue.input === undefined) return `field "${where}" is missing`;
  if (issue.message.startsWith('Invalid type:')) return `field "${where}": expected ${issue.expected ?? 'another type'}, got ${issue.received}`;
  return `field "${where}" ${issue.message} (${JSON.stringify(issue.input)?.slice(0, 60)})`;
}

function checkUnique(file: string, names: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw invalid(file, `duplicate ${what} "${n}"`);
    seen.add(n);
  }
}

/** appc's Volume rules (schema/types/volume.go), as our Volume. */
function toVolume(file: string, r: RawVolume): Volume {
  const what = `volume "${r.name}"`;
  if (r.kind === 'host') {
    if (!r.source) throw invalid(file, `${what}: kind "host" needs a "source"`);
    if (!r.source.startsWith('/')) throw invalid(file, `${what}: "source" must be an absolute path (got "${r.source}")`);
    for (const k of ['mode', 'uid', 'gid'] as const) if (r[k] != null) throw invalid(file, `${what}: "${k}" applies to empty volumes only`);
    return { name: r.name, kind: 'host', source: r.source, ...(r.readOnly != null ? { readOnly: r.readOnly } : {}), ...(r.recursive != null ? { recursive: r.recursive } : {}) };
  }
  if (r.source) throw invalid(file, `${what}: an empty volume has no "source"`);
  return {
    name: r.name,
    kind: 'empty',
    ...(r.readOnly != null ? { readOnly: r.readOnly } : {}),
    ...(r.mode != null ? { mode: r.mode } : {}),
    ...(r.uid != null ? { uid: r.uid } : {}),
    ...(r.gid != null ? { gid: r.gid } : {}),
  };
}

function toApp(file: string, r: RawApp, volumes: ReadonlySet<string>): ManifestApp {
  const what = `app "${r.name}"`;
  const mounts = (r.mounts ?? []).map((m) => ({ volume: m.volume, path: m.path }));
  for (const m of mounts) {
    if (!volumes.has(m.volume)) throw invalid(file, `${what}: mount ${m.path} names volume "${m.volume}", which "volumes" does not declare`);
  }
  checkUnique(file, mounts.map((m) => m.path), `mount path in ${what}:`);
  checkUnique(file, (r.annotations ?? []).map((a) => a.name), `annotation in ${what}:`);
  const app = r.app ?? undefined;
  if (app) {
    if (!app.exec || app.exec.length === 0) throw invalid(file, `${what}: its app section has no "exec"`);
    checkUnique(file, (app.mountPoints ?? []).map((p) => p.name), `mount point in ${what}:`);
    checkUnique(file, (app.ports ?? []).map((p) => p.name), `port in ${what}:`);
    checkUnique(file, (app.environment ?? []).map((e) => e.name), `environment variable in ${what}:`);
  }
  return { name: r.name, imageId: r.image.id, app, readOnlyRootFS: r.readOnlyRootFS ?? false, mounts, annotations: (r.annotations ?? []).map((a) => ({ name: a.name, value: a.value })) };
}

function fieldsOf(m: RawPod, ports: readonly PortRequest[]): PodFields {
  return {
    acVersion: m.acVersion,
    isolators: m.isolators ?? [],
    annotations: m.annotations ?? [],
    ports: ports.map((p) => ({ name: p.name, hostPort: p.hostPort, ...(p.hostIp ? { hostIP: p.hostIp } : {}) })),
    ...(m.userAnnotations ? { userAnnotations: m.userAnnotations } : {}),
    ...(m.userLabels ? { userLabels: m.userLabels } : {}),
  };
}

/** Validates a pod manifest's text (`file` names it in errors). Pure. */
export function parsePodManifest(text: string, file: string): PodManifestInput {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw invalid(file, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid(file, 'not a JSON object');
  const kind = (json as { acKind?: unknown }).acKind;
  if (kind !== 'PodManifest') throw invalid(file, `acKind is ${JSON.stringify(kind) ?? 'missing'}, not "PodManifest"`, kind === 'ImageManifest' ? 'that is an image manifest: run the image instead' : undefined);
  const r = v.safeParse(podSchema, json);
  if (!r.success) throw invalid(file, describeIssue(r.issues[0]));
  const m = r.output;
  const rawApps = m.apps ?? [];
  if (rawApps.length === 0) throw invalid(file, 'it has no apps');
  checkUnique(file, rawApps.map((a) => a.name), 'app name');
  checkUnique(file, (m.volumes ?? []).map((x) => x.name), 'volume');
  checkUnique(file, (m.annotations ?? []).map((a) => a.name), 'annotation');
  const volumes = (m.volumes ?? []).map((x) => toVolume(file, x));
  const names = new Set(volumes.map((x) => x.name));
  const apps = rawApps.map((a) => toApp(file, a, names));
  let ports: PortRequest[];
  try {
    ports = exposedPortRequests(m.ports);
  } catch (e) {
    throw invalid(file, (e as Error).message);
  }
  return { apps, volumes, ports, fields: fieldsOf(m, ports) };
}

/** Reads and validates the file given to --pod-manifest. */
export function readPodManifest(file: string): PodManifestInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new RktError(code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `cannot read pod manifest ${file}: ${why}`);
  }
  return parsePodManifest(text, file);
}

/**
 * With --pod-manifest the manifest is the pod: image arguments and the flags
 * it replaces are refused (rkt: "conflicting flags set with --pod-manifest").
 */
export function checkManifestFlags(parsed: ParsedRun): void {
  const first = parsed.apps[0];
  if (first) throw usage(`image arguments cannot be used with --pod-manifest (got "${first.image}"): the manifest lists the pod's apps`);
  const p = parsed.pod;
  const given: [string, boolean][] = [
    ['--volume', ((p.volume as string[] | undefined) ?? []).length > 0],
    ['--mount', parsed.globalMounts.length > 0],
    ['--port', ((p.port as string[] | undefined) ?? []).length > 0],
    ['--inherit-env', p['inherit-env'] === true],
    ['--set-env', ((p['set-env'] as string[] | undefined) ?? []).length > 0],
    ['--set-env-file', Boolean(p['set-env-file'])],
    ['--pull-policy', p['pull-policy'] !== undefined && p['pull-policy'] !== 'new'],
    ['--store-only', p['store-only'] === true],
    ['--no-store', p['no-store'] === true],
  ];
  const bad = given.filter(([, on]) => on).map(([name]) => name);
  if (bad.length > 0) throw usage(`${bad.join(', ')} cannot be used with --pod-manifest: the manifest defines the pod (see --help)`);
}

/** An app of the manifest as the CLI grammar would have given it: name, read-only rootfs, annotations. */
export function appArgs(app: ManifestApp): AppArgs {
  const flags = defaults(APP_FLAGS);
  flags.name = app.name;
  flags['readonly-rootfs'] = app.readOnlyRootFS;
  flags.annotation = app.annotations.map((a) => `${a.name}=${a.value}`);
  return { image: app.imageId, flags, set: new Set(['name', 'readonly-rootfs', 'annotation']), args: undefined };
}
