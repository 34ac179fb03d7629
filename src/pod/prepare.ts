// Preparing a pod: images resolved and rendered, the pod manifest written,
// every app's process and mounts decided (plan.json) and its root
// filesystem dirs made. The pod dir is created in embryo/, owned by this
// process, and moved to prepare/ while it is filled in.
import { randomUUID } from '../lib/uuid.ts';
import { accessSync, chmodSync, chownSync, constants, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GlobalOptions } from '../config/global.ts';
import type { AppArgs } from '../cli/apps.ts';
import { parseKeyValues } from '../cli/apps.ts';
import { RktError } from '../lib/errors.ts';
import { formatProcId, selfId } from '../lib/proc.ts';
import { secureJoin } from '../lib/securejoin.ts';
import { warn } from '../lib/log.ts';
import type { ImageRow, Store } from '../image/store/store.ts';
import { buildEnv, parseEnvFile } from './env.ts';
import { checkAppName, defaultAppName, emptyPodManifest, parseMount, resolveMounts, type PodFields, type PodManifest, type RuntimeApp, type Volume } from './manifest.ts';
import type { AppSpec } from '../image/aci/manifest.ts';
import type { Plan, PlannedApp, PlannedMount } from './plan.ts';
import { ensurePodDirs, movePod, nowNs, podsDir, type Pod } from './pods.ts';
import { resolveGroup, resolveUser } from './users.ts';
import { dockerArgs, dockerExec } from '../image/docker/convert.ts';
import { checkMountTarget } from './targets.ts';
import { allocateRange } from './userns.ts';
import { cliIsolators, mergeIsolators, resolveIsolators, type Isolator } from '../stage1/isolators.ts';
import { CAP_NAMES } from '../stage1/oci.ts';
import { childProcess } from '../lib/builtins.ts';

export interface ResolvedApp {
  req: AppArgs;
  row: ImageRow;
  /** Rendered tree dir (contains rootfs/). */
  tree: string;
  /** Docker images: overlay lowerdir of their layers (`:`-joined, top first); `tree` is then a read-only merged view. */
  lower?: string | undefined;
  /** --pod-manifest: the app's section there (replaces the image's app when given) and its mounts (instead of --mount). */
  fromManifest?: { app: AppSpec | undefined; mounts: { volume: string; path: string }[] } | undefined;
}

export interface PrepareOptions {
  global: GlobalOptions;
  store: Store;
  dataDir: string;
  apps: ResolvedApp[];
  volumes: Volume[];
  globalMounts: string[];
  inheritEnv: boolean;
  setEnv: string[];
  setEnvFile: string;
  noOverlay: boolean;
  flavor: 'default' | 'fly';
  /** --private-users (pod/userns.ts). */
  privateUsers?: boolean;
  /** --pod-manifest: pod-level fields written as given; volumes no app mounts are then allowed (appc). */
  podFields?: PodFields;
}

/** Creates a new pod dir in embryo/, owned by this process, then moves it to prepare/. */
export function createPod(dataDir: string, uuid: string = randomUUID()): Pod {
  ensurePodDirs(dataDir);
  // Filled under a hidden name, then renamed: no other command ever sees a pod without its owner.
  const hidden = join(podsDir(dataDir, 'embryo'), `.${uuid}`);
  mkdirSync(hidden, { mode: 0o750 });
  writeFileSync(join(hidden, 'owner'), formatProcId(selfId()));
  writeFileSync(join(hidden, 'created'), nowNs());
  const dir = join(podsDir(dataDir, 'embryo'), uuid);
  renameSync(hidden, dir);
  const pod = movePod({ uuid, place: 'embryo', dir, dataDir }, 'prepare');
  if (!pod) throw new RktError('STATE', `pod ${uuid} vanished while being created`);
  return pod;
}

function resolveExec(rootfs: string, exec: string[], env: { name: string; value: string }[], appName: string): string[] {
  if (exec.length === 0) throw new RktError('USAGE', `image of app "${appName}" has an empty "exec" (try --exec=BINARY)`);
  const bin = exec[0] as string;
  const candidates = bin.includes('/')
    ? [bin.startsWith('/') ? bin : `/${bin}`]
    : (env.find((e) => e.name === 'PATH')?.value ?? '').split(':').filter((d) => d.startsWith('/')).map((d) => `${d}/${bin}`);
  for (const c of candidates) {
    try {
      const host = secureJoin(rootfs, c);
      if (statSync(host).isFile()) {
        accessSync(host, constants.X_OK);
        return [bin.includes('/') ? c : c, ...exec.slice(1)];
      }
    } catch {
      /* try the next candidate */
    }
  }
  throw new RktError('NOT_FOUND', `app "${appName}": executable "${bin}" not found in the image`, { hint: 'check --exec, or the image' });
}

function hasNonEmptyFile(rootfs: string, path: string): boolean {
  try {
    return statSync(secureJoin(rootfs, path)).size > 0;
  } catch {
    return false;
  }
}

function prepopulateVolume(rootfs: string, path: string, dest: string): void {
  const src = secureJoin(rootfs, path);
  try {
    if (!statSync(src).isDirectory()) return;
  } catch {
    return;
  }
  childProcess().execFileSync('cp', ['-a', '--', `${src}/.`, dest]);
}

/** Creates an empty volume's dir; returns its path relative to the pod dir (the pod moves between places). */
function makeEmptyVolume(pod: Pod, v: Volume): string {
  const rel = join('sharedVolumes', v.name);
  const dir = join(pod.dir, rel);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, Number.parseInt(v.mode ?? '0755', 8));
  chownSync(dir, v.uid ?? 0, v.gid ?? 0);
  return rel;
}

function planApp(pod: Pod, o: PrepareOptions, a: ResolvedApp, name: string, volumes: Volume[], hostEnv: Record<string, string | undefined> | undefined, envFile: [string, string][]): { plan: PlannedApp; ra: RuntimeApp } {
  const f = a.req.flags;
  const manifest = a.row.manifest;
  const image = a.fromManifest?.app ?? manifest.app ?? { exec: [], user: '0', group: '0' };
  const rootfs = join(a.tree, 'rootfs');
  const env = buildEnv({
    ...(hostEnv ? { host: hostEnv } : {}),
    image: image.environment ?? [],
    envFile,
    setEnv: parseKeyValues(o.setEnv, '--set-env'),
    environment: parseKeyValues(f.environment as string[], '--environment'),
    appName: name,
  });
  let exec = [...(image.exec ?? [])];
  if (f.exec) exec = [f.exec as string];
  if (a.req.args) exec.push(...a.req.args);
  const docker = dockerExec(manifest);
  // Docker's way: args replace Cmd (not when a pod manifest gives the app section).
  if (docker && !a.fromManifest?.app) exec = dockerArgs(docker, (f.exec as string) || undefined, a.req.args);
  const args = resolveExec(rootfs, exec, env, name);
  const user = resolveUser(rootfs, (f.user as string) || image.user || '0');
  const gid = (f.group as string) ? resolveGroup(rootfs, f.group as string) : image.group ? resolveGroup(rootfs, image.group) : (user.gid ?? 0);
  const sgids = f['supplementary-gids'] as string;
  const additionalGids = sgids ? sgids.split(',').map((g) => {
    if (!/^\d+$/.test(g.trim())) throw new RktError('USAGE', `invalid --supplementary-gids "${sgids}": expected numbers`);
    return Number(g.trim());
  }) : (image.supplementaryGIDs ?? []);
  const cwd = (f['working-dir'] as string) || image.workingDirectory || '/';
  if (!cwd.startsWith('/')) throw new RktError('USAGE', `--working-dir must be an absolute path (got "${cwd}")`);

  const cli = a.fromManifest?.mounts ?? [...o.globalMounts, ...(f.mount as string[])].map(parseMount);
  const mounts = resolveMounts(name, image.mountPoints ?? [], cli, volumes, warn);
  for (const m of mounts) checkMountTarget(rootfs, m.path, name);
  const isolators = mergeIsolators((image.isolators ?? []) as Isolator[], cliIsolators(f));
  const security = resolveIsolators(isolators, user.uid, CAP_NAMES);
  const planned: PlannedMount[] = mounts.map((m) => {
    const v = volumes.find((x) => x.name === m.volume) as Volume;
    const mp = image.mountPoints?.find((p) => p.path === m.path);
    const readOnly = v.readOnly ?? mp?.readOnly ?? false;
    const source = v.kind === 'host' ? (v.source as string) : makeEmptyVolume(pod, v);
    // rkt pre-populates the implicit empty volumes of Docker-converted images with the image's files at that path.
    if (v.kind === 'empty' && docker && mp && v.name === `${name}-${mp.name}`) prepopulateVolume(rootfs, m.path, join(pod.dir, source));
    if (v.kind === 'host') {
      try {
        statSync(source);
      } catch {
        throw new RktError('NOT_FOUND', `volume "${v.name}": host path ${source} does not exist`);
      }
    }
    return { destination: m.path, source, readOnly, recursive: v.kind === 'host' ? (v.recursive ?? o.flavor !== 'fly') : false };
  });

  const annotations = parseKeyValues(f.annotation as string[], '--annotation').map(([n, v]) => ({ name: n, value: v }));
  const ra: RuntimeApp = {
    name,
    image: { name: manifest.name, id: a.row.key, labels: manifest.labels ?? [] },
    app: {
      ...image,
      exec: args,
      user: String(user.uid),
      group: String(gid),
      ...(additionalGids.length ? { supplementaryGIDs: additionalGids } : {}),
      workingDirectory: cwd,
      environment: env,
      ...(isolators.length ? { isolators } : {}),
      ...((f['user-annotation'] as string[]).length ? { userAnnotations: Object.fromEntries(parseKeyValues(f['user-annotation'] as string[], '--user-annotation')) } : {}),
      ...((f['user-label'] as string[]).length ? { userLabels: Object.fromEntries(parseKeyValues(f['user-label'] as string[], '--user-label')) } : {}),
    },
    ...(f['readonly-rootfs'] ? { readOnlyRootFS: true } : {}),
    mounts,
    annotations,
  };
  return {
    ra,
    plan: {
      name,
      imageKey: a.row.key,
      treeRootfs: a.lower ?? rootfs,
      args,
      env: env.map((e) => `${e.name}=${e.value}`),
      cwd,
      uid: user.uid,
      gid,
      additionalGids,
      readonlyRootfs: Boolean(f['readonly-rootfs']),
      mounts: planned,
      imageHasHosts: hasNonEmptyFile(rootfs, '/etc/hosts'),
      security,
    },
  };
}

/** Fills a pod created by createPod: manifest, plan, app dirs. */
export function preparePod(pod: Pod, o: PrepareOptions): { manifest: PodManifest; plan: Plan } {
  if (o.apps.length === 0) throw new RktError('USAGE', 'at least one image is required');
  if (o.flavor === 'fly' && o.apps.length !== 1) throw new RktError('USAGE', 'the fly flavor runs exactly one app');
  const names = new Set<string>();
  const volumes = o.volumes.map((v) => ({ ...v }));
  const seenVol = new Set<string>();
  for (const v of volumes) {
    if (seenVol.has(v.name)) throw new RktError('USAGE', `volume "${v.name}" given twice`);
    seenVol.add(v.name);
  }
  const hostEnv = o.inheritEnv ? { ...process.env } : undefined;
  let envFile: [string, string][] = [];
  if (o.setEnvFile) {
    let text: string;
    try {
      text = readFileSync(o.setEnvFile, 'utf8');
    } catch (e) {
      throw new RktError('NOT_FOUND', `cannot read --set-env-file ${o.setEnvFile}: ${(e as Error).message}`);
    }
    envFile = parseEnvFile(text, o.setEnvFile);
  }
  const manifest = { ...emptyPodManifest(), ...o.podFields };
  const plan: Plan = { flavor: o.flavor, noOverlay: o.noOverlay, apps: [] };
  if (o.privateUsers) plan.privateUsers = allocateRange();
  for (const a of o.apps) {
    const name = checkAppName((a.req.flags.name as string) || defaultAppName(a.row.manifest.name));
    if (names.has(name)) throw new RktError('USAGE', `duplicate app name "${name}"`, { hint: 'give each app its own --name' });
    names.add(name);
    const { plan: p, ra } = planApp(pod, o, a, name, volumes, hostEnv, envFile);
    manifest.apps.push(ra);
    plan.apps.push(p);
  }
  const used = new Set(manifest.apps.flatMap((a) => a.mounts.map((m) => m.volume)));
  // A --volume no app mounts is refused; a pod manifest may declare one (appc allows it).
  for (const v of o.podFields ? [] : volumes) {
    if (!used.has(v.name)) throw new RktError('USAGE', `volume "${v.name}" has no mount point in any app`, { hint: `add --mount volume=${v.name},target=/PATH after the image` });
  }
  manifest.volumes = volumes;

  for (const [i, app] of plan.apps.entries()) {
    const base = join(pod.dir, 'apps', app.name);
    mkdirSync(join(base, 'rootfs'), { recursive: true });
    if (o.noOverlay) {
      const src = o.apps[i]?.lower ? join((o.apps[i] as ResolvedApp).tree, 'rootfs') : app.treeRootfs;
      childProcess().execFileSync('cp', ['-a', '--', `${src}/.`, join(base, 'rootfs')]);
    } else {
      mkdirSync(join(base, 'upper'));
      mkdirSync(join(base, 'work'));
    }
  }
  writeFileSync(join(pod.dir, 'pod'), JSON.stringify(manifest));
  writeFileSync(join(pod.dir, 'plan.json'), JSON.stringify(plan));
  return { manifest, plan };
}
