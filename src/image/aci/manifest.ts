// appc ImageManifest (spec/aci.md, schema/image.go): types and validation.
// Pure: takes the manifest bytes, returns a typed manifest or throws a
// RktError('INVALID_MANIFEST') naming the offending field.
import * as v from 'valibot';
import { RktError } from '../../lib/errors.ts';

import { AC_IDENTIFIER, AC_NAME } from './labels.ts';
export { AC_IDENTIFIER, AC_NAME };

export const acIdentifier = v.pipe(v.string(), v.regex(AC_IDENTIFIER, 'is not a valid AC Identifier'));
export const acName = v.pipe(v.string(), v.regex(AC_NAME, 'is not a valid AC Name'));
export const label = v.object({ name: acIdentifier, value: v.string() });
export const kv = v.object({ name: acIdentifier, value: v.string() });
const envVar = v.object({ name: v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not a valid environment variable name')), value: v.string() });
export const absPath = v.pipe(v.string(), v.regex(/^\//, 'must be an absolute path'));

/** An image's `app` section; a pod manifest's apps use it too (pod/podmanifest.ts). */
export const appSchema = v.object({
  exec: v.optional(v.array(v.string())),
  user: v.string(),
  group: v.string(),
  supplementaryGIDs: v.optional(v.array(v.pipe(v.number(), v.integer(), v.minValue(0)))),
  eventHandlers: v.optional(v.array(v.object({ name: v.picklist(['pre-start', 'post-stop']), exec: v.array(v.string()) }))),
  workingDirectory: v.optional(v.union([v.literal(''), absPath])),
  environment: v.optional(v.array(envVar)),
  isolators: v.optional(v.array(v.object({ name: acIdentifier, value: v.unknown() }))),
  mountPoints: v.optional(v.array(v.object({ name: acName, path: absPath, readOnly: v.optional(v.boolean()) }))),
  ports: v.optional(
    v.array(
      v.object({
        name: acName,
        protocol: v.string(),
        port: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535)),
        count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
        socketActivated: v.optional(v.boolean()),
      }),
    ),
  ),
  userAnnotations: v.optional(v.record(v.string(), v.string())),
  userLabels: v.optional(v.record(v.string(), v.string())),
});

const dependency = v.object({
  imageName: acIdentifier,
  imageID: v.optional(v.pipe(v.string(), v.regex(/^sha512-[0-9a-f]+$/, 'is not a valid image ID'))),
  labels: v.optional(v.array(label)),
  size: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
});

const manifestSchema = v.object({
  acKind: v.literal('ImageManifest'),
  acVersion: v.pipe(v.string(), v.regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/, 'is not a valid semantic version')),
  name: acIdentifier,
  labels: v.optional(v.array(label)),
  app: v.optional(v.nullable(appSchema)),
  annotations: v.optional(v.array(kv)),
  dependencies: v.optional(v.array(dependency)),
  pathWhitelist: v.optional(v.array(absPath)),
});

export type ImageManifest = v.InferOutput<typeof manifestSchema>;
export type AppSpec = NonNullable<ImageManifest['app']>;
export type Dependency = NonNullable<ImageManifest['dependencies']>[number];
export type { Label } from './labels.ts';
export { displayName, labelValue } from './labels.ts';
import { labelValue } from './labels.ts';

/** appc's valid os/arch pairs (schema/types/labels.go). */
export const VALID_OS_ARCH: Record<string, readonly string[]> = {
  linux: ['amd64', 'i386', 'aarch64', 'aarch64_be', 'armv6l', 'armv7l', 'armv7b', 'ppc64', 'ppc64le', 's390x'],
  freebsd: ['amd64', 'i386', 'arm'],
  darwin: ['x86_64', 'i386'],
};

export function issuePath(issue: v.BaseIssue<unknown>): string {
  return (issue.path ?? []).map((p) => (typeof p.key === 'number' ? `[${p.key}]` : `.${String(p.key)}`)).join('').replace(/^\./, '');
}

function checkUnique(names: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new RktError('INVALID_MANIFEST', `invalid image manifest: duplicate ${what} "${n}"`);
    seen.add(n);
  }
}

/** Parses and validates manifest bytes. */
export function parseImageManifest(data: Buffer | string): ImageManifest {
  let json: unknown;
  try {
    json = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch (e) {
    throw new RktError('INVALID_MANIFEST', `invalid image manifest: not valid JSON (${(e as Error).message})`);
  }
  const r = v.safeParse(manifestSchema, json);
  if (!r.success) {
    const issue = r.issues[0];
    const where = issuePath(issue);
    const got = issue.input === undefined ? 'missing' : JSON.stringify(issue.input)?.slice(0, 60);
    throw new RktError('INVALID_MANIFEST', `invalid image manifest: field "${where || '(root)'}" ${issue.message.startsWith('Invalid') ? `is invalid (${got})` : `${issue.message} (${got})`}`);
  }
  const m = r.output;
  checkUnique((m.labels ?? []).map((l) => l.name), 'label');
  checkUnique((m.annotations ?? []).map((a) => a.name), 'annotation');
  if (m.app) {
    const exec = m.app.exec;
    if (exec && exec.length > 0 && !(exec[0] as string).startsWith('/')) {
      throw new RktError('INVALID_MANIFEST', `invalid image manifest: app.exec[0] must be an absolute path (got "${exec[0]}")`);
    }
    checkUnique((m.app.mountPoints ?? []).map((p) => p.name), 'mount point');
    checkUnique((m.app.ports ?? []).map((p) => p.name), 'port');
    checkUnique((m.app.environment ?? []).map((e) => e.name), 'environment variable');
  }
  const os = labelValue(m.labels, 'os');
  const arch = labelValue(m.labels, 'arch');
  if (os !== undefined && arch !== undefined) {
    const archs = VALID_OS_ARCH[os];
    if (archs && !archs.includes(arch)) throw new RktError('INVALID_MANIFEST', `invalid image manifest: bad arch "${arch}" for ${os}`);
  }
  return m;
}


/** The appc arch name of this host. */
export function hostArch(): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: 'i386', arm64: 'aarch64', arm: 'armv7l', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

/** rkt refuses images whose os/arch labels are missing or not this host's. */
export function checkOsArch(m: ImageManifest): void {
  const os = labelValue(m.labels, 'os');
  const arch = labelValue(m.labels, 'arch');
  if (os === undefined) throw new RktError('OS_ARCH', `image "${m.name}": missing os label in the image manifest`);
  if (arch === undefined) throw new RktError('OS_ARCH', `image "${m.name}": missing arch label in the image manifest`);
  if (!VALID_OS_ARCH[os]) throw new RktError('OS_ARCH', `image "${m.name}": bad os "${os}"`);
  if (os !== process.platform || arch !== hostArch()) {
    throw new RktError('OS_ARCH', `image "${m.name}" is for ${os}/${arch}, this host is ${process.platform}/${hostArch()}`);
  }
}

