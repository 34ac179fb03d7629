// `rkt run` and `rkt prepare`: rkt's app grammar, image resolution, pod
// preparation; `run` then launches the pod and becomes its monitor.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataDir } from '../../config/files.ts';
import { GLOBAL_FLAGS } from '../../config/global.ts';
import { RktError, errMessage, usage } from '../../lib/errors.ts';
import { nowNs, movePod, type Pod } from '../../pod/pods.ts';
import type { Command, CommandContext } from '../command.ts';
import { APP_FLAGS, parseRunArgs, type ParsedRun } from '../apps.ts';
import { formatFlags, type FlagDef } from '../flags.ts';
import { NET_FLAGS, type NetHandle } from '../../net/pod.ts';

const COMMON_POD_FLAGS: FlagDef[] = [
  { name: 'inherit-env', type: 'bool', default: false, help: 'inherit all environment variables not set by apps' },
  { name: 'set-env', type: 'strings', help: 'an environment variable to set for apps in the form name=value' },
  { name: 'set-env-file', type: 'string', default: '', help: 'the path to an environment variables file' },
  { name: 'no-overlay', type: 'bool', default: false, help: 'disable overlay filesystem' },
  { name: 'private-users', type: 'bool', default: false, help: 'run within user namespaces: the pod\'s ids 0-65535 map to a random unprivileged host range (idmapped mounts keep the image and volumes root-owned inside)' },
  { name: 'volume', type: 'strings', help: 'volumes to mount into the pod (NAME,kind=host,source=PATH[,readOnly=BOOL] or NAME,kind=empty[,mode=0755,uid=0,gid=0])' },
  { name: 'pod-manifest', type: 'string', default: '', help: 'the path to an appc pod manifest to use instead of image arguments (its images must be in the store, referenced by ID); --volume, --mount, --port, --inherit-env, --set-env, --set-env-file, --pull-policy and per-app flags are then refused', arg: 'FILE' },
  { name: 'pull-policy', type: 'string', default: 'new', help: 'when to pull an image: new, update or never' },
  { name: 'store-only', type: 'bool', default: false, help: 'deprecated: --pull-policy=never', hidden: true },
  { name: 'no-store', type: 'bool', default: false, help: 'deprecated: --pull-policy=update', hidden: true },
  { name: 'stage1-name', type: 'string', default: '', help: 'stage1 flavor by name: coreos.com/rkt/stage1-coreos (default) or coreos.com/rkt/stage1-fly (also: default, fly)' },
  { name: 'stage1-path', type: 'string', default: '', help: 'stage1 by path; a file named stage1-fly*.aci selects the fly flavor' },
  { name: 'stage1-from-dir', type: 'string', default: '', help: 'stage1 by file name: stage1-coreos.aci or stage1-fly.aci' },
  { name: 'stage1-url', type: 'string', default: '', help: 'stage1 by URL (not supported: the flavors are built in)', hidden: true },
  { name: 'stage1-hash', type: 'string', default: '', help: 'stage1 by image hash (not supported: the flavors are built in)', hidden: true },
  { name: 'oci-runtime', type: 'string', default: '', help: 'OCI runtime executing the apps: crun (default when installed), runc, or a path (also RKT_OCI_RUNTIME)' },
  { name: 'help', short: 'h', type: 'bool', default: false, help: 'help', hidden: true },
];

export const RUN_FLAGS: FlagDef[] = [
  ...COMMON_POD_FLAGS,
  ...NET_FLAGS,
  { name: 'hostname', type: 'string', default: '', help: 'pod\'s hostname (default "rkt-$PODUUID")' },
  { name: 'interactive', type: 'bool', default: false, help: 'run pod interactively; only one app may be given' },
  { name: 'uuid-file-save', type: 'string', default: '', help: 'write out pod UUID to specified file' },
  { name: 'mds-register', type: 'bool', default: false, help: 'register pod with metadata service (not available yet)', hidden: true },
  { name: 'exit-policy', type: 'string', default: 'fail-fast', help: 'when the pod exits: fail-fast (rkt: stop the other apps when one fails) or all (wait for every app)' },
  { name: 'stop-timeout', type: 'int', default: 10, help: 'seconds between SIGTERM and SIGKILL when stopping apps' },
];

export const PREPARE_FLAGS: FlagDef[] = [
  ...COMMON_POD_FLAGS,
  { name: 'quiet', short: 'q', type: 'bool', default: false, help: 'suppress superfluous output on stdout, print only the UUID on success' },
];

export function flavorOf(v: Record<string, unknown>): 'default' | 'fly' {
  const given = ['stage1-name', 'stage1-path', 'stage1-from-dir', 'stage1-url', 'stage1-hash'].filter((k) => v[k]);
  if (given.length > 1) throw usage(`only one of --${given.join(', --')} may be given`);
  if (v['stage1-url'] || v['stage1-hash']) throw usage('--stage1-url and --stage1-hash are not supported: the stage1 flavors are built in (use --stage1-name=default|fly)');
  const name = String(v['stage1-name'] || '');
  if (name) {
    const base = name.split(':')[0];
    if (base === 'fly' || base === 'coreos.com/rkt/stage1-fly') return 'fly';
    if (base === 'default' || base === 'coreos' || base === 'coreos.com/rkt/stage1-coreos') return 'default';
    throw usage(`unknown stage1 "${name}": use coreos.com/rkt/stage1-coreos or coreos.com/rkt/stage1-fly`);
  }
  const file = String(v['stage1-path'] || v['stage1-from-dir'] || '');
  if (file) return /stage1-fly[^/]*$/.test(file) ? 'fly' : 'default';
  return 'default';
}

async function help(ctx: CommandContext, cmd: Command, flags: FlagDef[]): Promise<number> {
  const { commandHelp } = await import('../help.ts');
  ctx.stdout.write(commandHelp(cmd, `${formatFlags(flags)}\n\nPer-app flags (after an image):\n${formatFlags(APP_FLAGS)}`, formatFlags(GLOBAL_FLAGS)));
  return 0;
}

type Plan = import('../../pod/plan.ts').Plan;
type ImageRow = import('../../image/store/store.ts').ImageRow;
type Store = import('../../image/store/store.ts').Store;
type ResolvedApp = import('../../pod/prepare.ts').ResolvedApp;
type PodManifestInput = import('../../pod/podmanifest.ts').PodManifestInput;
/** An app whose image is found: what the pod is prepared from. */
type PickedApp = Pick<ResolvedApp, 'req' | 'row' | 'fromManifest'>;

/** What preparePod takes besides the apps and what the command knows. */
type PodOptions = Omit<import('../../pod/prepare.ts').PrepareOptions, 'global' | 'store' | 'dataDir' | 'apps' | 'flavor' | 'privateUsers' | 'noOverlay'>;

function checkPodFlags(v: Record<string, unknown>): void {
  if (v['private-users'] && flavorOf(v) === 'fly') throw usage('--private-users is not supported by the fly flavor');
  if (v['store-only'] && v['no-store']) throw usage('both --store-only and --no-store specified');
}

/** Renders the images; Docker images get a read-only merged view of their layers while preparing (the pod gets the layer list). */
async function renderApps(store: Store, picked: readonly PickedApp[]): Promise<{ apps: ResolvedApp[]; release: () => void }> {
  const { renderImage } = await import('../../image/render.ts');
  const releases: (() => void)[] = [];
  const release = () => {
    for (const r of releases.splice(0)) r();
  };
  const apps: ResolvedApp[] = [];
  try {
    for (const p of picked) {
      if (p.row.kind === 'docker') {
        const { openLayeredTree } = await import('../../image/docker/layers.ts');
        const view = openLayeredTree(store, p.row);
        releases.push(view.release);
        apps.push({ ...p, tree: view.tree, lower: view.lower });
      } else {
        apps.push({ ...p, tree: await renderImage(store, p.row) });
      }
    }
  } catch (e) {
    release();
    throw e;
  }
  return { apps, release };
}

/**
 * Creates the pod in prepare/ and fills it from the picked apps; `check` sees
 * the written manifest. On any failure the pod is removed again.
 */
async function assemblePod(ctx: CommandContext, store: Store, picked: readonly PickedApp[], v: Record<string, unknown>, o: PodOptions, uuid: string | undefined, check?: (m: import('../../pod/manifest.ts').PodManifest) => void): Promise<{ pod: Pod; plan: Plan }> {
  const { createPod, preparePod } = await import('../../pod/prepare.ts');
  const { apps, release } = await renderApps(store, picked);
  let pod: Pod | undefined;
  try {
    pod = createPod(dataDir(ctx.global), uuid);
    const { manifest, plan } = preparePod(pod, {
      global: ctx.global,
      store,
      dataDir: dataDir(ctx.global),
      apps,
      noOverlay: v['no-overlay'] as boolean,
      flavor: flavorOf(v),
      privateUsers: v['private-users'] as boolean,
      ...o,
    });
    check?.(manifest);
    return { pod, plan };
  } catch (e) {
    if (pod) {
      const { teardown } = await import('../../pod/teardown.ts');
      teardown(pod);
    }
    throw e;
  } finally {
    release();
  }
}

/** Resolves the images of the arguments and prepares a pod in prepare/; the caller decides what comes next. */
async function preparePodFromArgs(ctx: CommandContext, parsed: ParsedRun, uuid?: string): Promise<{ pod: Pod; plan: Plan }> {
  const v = parsed.pod;
  checkPodFlags(v);
  if (parsed.apps.length === 0) throw usage('at least one image is required');
  const { fetchImage, parsePullPolicy } = await import('../../image/fetch/fetcher.ts');
  let policy = parsePullPolicy(v['pull-policy'] as string);
  if (v['store-only']) policy = 'never';
  if (v['no-store']) policy = 'update';
  const { Store } = await import('../../image/store/store.ts');
  const { parseVolume } = await import('../../pod/manifest.ts');
  const volumes = (v.volume as string[]).map(parseVolume);
  using store = Store.open(dataDir(ctx.global));
  const picked: PickedApp[] = [];
  for (const a of parsed.apps) {
    picked.push({ req: a, row: await fetchImage(a.image, { store, global: ctx.global, pullPolicy: policy, signature: (a.flags.signature as string) || undefined }) });
  }
  return await assemblePod(ctx, store, picked, v, {
    volumes,
    globalMounts: parsed.globalMounts,
    inheritEnv: v['inherit-env'] as boolean,
    setEnv: v['set-env'] as string[],
    setEnvFile: v['set-env-file'] as string,
  }, uuid);
}

/** --pod-manifest: reads and checks the manifest and the flags given with it (before anything is set up). */
async function loadPodManifest(parsed: ParsedRun): Promise<PodManifestInput> {
  const { checkManifestFlags, readPodManifest } = await import('../../pod/podmanifest.ts');
  checkManifestFlags(parsed);
  return readPodManifest(parsed.pod['pod-manifest'] as string);
}

/** --pod-manifest: a store image by the manifest's ID (never fetched, as rkt). */
async function findManifestImage(ctx: CommandContext, store: Store, app: PodManifestInput['apps'][number]): Promise<ImageRow> {
  const { fetchImage } = await import('../../image/fetch/fetcher.ts');
  let row: ImageRow;
  try {
    row = await fetchImage(app.imageId, { store, global: ctx.global, pullPolicy: 'never' });
  } catch (e) {
    if (!(e instanceof RktError)) throw e;
    const hint = e.code === 'NOT_FOUND' ? 'the images of a pod manifest must be in the store: rkt fetch IMAGE, then use the ID that rkt image list shows' : e.hint;
    throw new RktError(e.code, `app "${app.name}": ${e.code === 'NOT_FOUND' ? `image ${app.imageId} is not in the store` : e.message}`, hint ? { hint } : {});
  }
  if (!app.app && !row.manifest.app) {
    throw new RktError('INVALID_MANIFEST', `app "${app.name}": neither the pod manifest nor image ${row.name} has an app section`);
  }
  return row;
}

/** Prepares a pod in prepare/ from a pod manifest. */
async function preparePodFromManifest(ctx: CommandContext, parsed: ParsedRun, m: PodManifestInput, uuid?: string): Promise<{ pod: Pod; plan: Plan }> {
  const v = parsed.pod;
  checkPodFlags(v);
  const { appArgs } = await import('../../pod/podmanifest.ts');
  const { Store } = await import('../../image/store/store.ts');
  using store = Store.open(dataDir(ctx.global));
  const picked: PickedApp[] = [];
  for (const app of m.apps) {
    picked.push({ req: appArgs(app), row: await findManifestImage(ctx, store, app), fromManifest: { app: app.app, mounts: app.mounts } });
  }
  const { declaredPorts } = await import('../../net/pod.ts');
  const { resolvePorts } = await import('../../net/ports.ts');
  return await assemblePod(ctx, store, picked, v, {
    volumes: m.volumes,
    globalMounts: [],
    inheritEnv: false,
    setEnv: [],
    setEnvFile: '',
    podFields: m.fields,
  }, uuid, (written) => resolvePorts(m.ports, declaredPorts(written)));
}

export const runCommand: Command = {
  name: 'run',
  usage: 'run [--volume=name,kind=host,...] [--mount volume=VOL,target=PATH] IMAGE [-- image-args...[---]]...',
  summary: 'Run image(s) in a pod in rkt',
  description: `Run image(s) in a pod in rkt

IMAGE should be a string referencing an image; either a hash, local file on
disk, or URL. They will be checked in that order and the first match will be
used.

An "--" may be used to inhibit rkt run's parsing of subsequent arguments,
which will instead be appended to the preceding image app's exec arguments.
End the image arguments with a lone "---" to resume argument parsing.`,
  flags: RUN_FLAGS,
  rawArgs: true,
  async run(ctx) {
    const parsed = parseRunArgs(ctx.argv, RUN_FLAGS);
    if (parsed.pod.help) return help(ctx, this, RUN_FLAGS);
    const v = parsed.pod;
    const fromFile = v['pod-manifest'] ? await loadPodManifest(parsed) : undefined;
    const { planNet, startNet } = await import('../../net/pod.ts');
    const netPlan = await planNet(ctx.global, v, flavorOf(v), fromFile?.ports);
    const exitPolicy = v['exit-policy'] as string;
    if (exitPolicy !== 'fail-fast' && exitPolicy !== 'all') throw usage(`invalid --exit-policy "${exitPolicy}": use fail-fast or all`);
    if (v.interactive && (fromFile ? fromFile.apps.length : parsed.apps.length) !== 1) throw usage('--interactive can only be used with exactly one app');
    if (v['mds-register']) throw usage('--mds-register is not supported in this version');
    // The network (netns, CNI ADD) is set up while the images are resolved and the pod prepared.
    const { randomUUID } = await import('../../lib/uuid.ts');
    const uuid = randomUUID();
    const network = startNet(netPlan, uuid);
    let prepared;
    try {
      prepared = fromFile ? await preparePodFromManifest(ctx, parsed, fromFile, uuid) : await preparePodFromArgs(ctx, parsed, uuid);
    } catch (e) {
      await network.abort();
      throw e;
    }
    const { pod, plan } = prepared;
    return startPod(ctx, pod, plan, {
      network,
      hostname: (v.hostname as string) || `rkt-${pod.uuid}`,
      interactive: v.interactive as boolean,
      exitPolicy: exitPolicy as 'fail-fast' | 'all',
      stopTimeout: v['stop-timeout'] as number,
      runtime: (v['oci-runtime'] as string) || undefined,
      uuidFile: v['uuid-file-save'] as string,
    });
  },
};

export interface StartOptions {
  /** Started by startNet; finished (and rolled back on failure) by startPod. */
  network: NetHandle;
  hostname: string;
  interactive: boolean;
  exitPolicy: 'fail-fast' | 'all';
  stopTimeout: number;
  runtime: string | undefined;
  uuidFile: string;
}

/** Moves a prepared pod to run/ and launches it (shared with run-prepared). */
export async function startPod(ctx: CommandContext, prepared: Pod, plan: import('../../pod/plan.ts').Plan, o: StartOptions): Promise<number> {
  const { formatProcId, selfId } = await import('../../lib/proc.ts');
  const { teardown } = await import('../../pod/teardown.ts');
  let moved: Pod | undefined;
  try {
    // A pod in prepare/ is ours already (createPod); rewriting its owner would open a
    // window where a concurrent gc reads an empty file and takes the pod for abandoned.
    // run-prepared claims a prepared pod exclusively (O_EXCL): gc never looks at owners there.
    if (prepared.place === 'prepared') writeFileSync(join(prepared.dir, 'owner'), formatProcId(selfId()), { flag: 'wx' });
    writeFileSync(join(prepared.dir, 'started'), nowNs());
    moved = movePod(prepared, 'run');
    if (!moved) throw new RktError('STATE', `pod ${prepared.uuid} was removed while starting`);
  } catch (e) {
    await o.network.abort();
    throw e;
  }
  const pod = moved;
  if (o.uuidFile) writeFileSync(o.uuidFile, pod.uuid);
  try {
    const { declaredPorts } = await import('../../net/pod.ts');
    const { readManifest } = await import('../../pod/pods.ts');
    // Fast path: the bundles are written while the CNI ADD runs; launch waits for it just before the
    // execve. Not for pods of several apps: their pause container joins the netns inside launch.
    const fast = o.network.fast && plan.apps.length === 1;
    const net = fast ? o.network.launchNet(pod.dir, o.hostname) : await o.network.finish(pod.dir, pod.dataDir, o.hostname, declaredPorts(readManifest(pod)));
    const { launch } = await import('../../stage1/launch.ts');
    return launch(pod, plan, {
      net: net.mode,
      etc: net.etc,
      beforeExec: fast ? () => o.network.finishSync(pod.dir) : undefined,
      // With bin/rkt, the ADD also overlaps the monitor's start and runc's container creation.
      netGate: fast && typeof net.mode === 'object' ? { netns: net.mode.netns, finish: () => gateNetwork(o.network, pod.dir) } : undefined,
      hostname: o.hostname,
      interactive: o.interactive,
      exitPolicy: o.exitPolicy,
      stopTimeout: o.stopTimeout,
      insecurePaths: ctx.global.insecure.has('paths'),
      insecureCapabilities: ctx.global.insecure.has('capabilities'),
      insecureSeccomp: ctx.global.insecure.has('seccomp'),
      runtime: o.runtime,
      debug: ctx.global.debug,
    });
  } catch (e) {
    await o.network.abort();
    teardown(pod);
    throw e;
  }
}

/**
 * After the handover: completes the network and tells the monitor, which
 * holds the app until then (POD/net-ready, or POD/net-failed with the error).
 */
function gateNetwork(network: NetHandle, podDir: string): void {
  let failure: string | undefined;
  try {
    network.finishSync(podDir);
  } catch (e) {
    failure = errMessage(e).split('\n')[0] ?? 'networking failed';
  }
  const file = join(podDir, failure === undefined ? 'net-ready' : 'net-failed');
  writeFileSync(`${file}.tmp`, failure === undefined ? '' : `${failure}\n`);
  renameSync(`${file}.tmp`, file);
}

export const prepareCommand: Command = {
  name: 'prepare',
  usage: 'prepare [--volume=name,kind=host,...] [--quiet] IMAGE [-- image-args...[---]]...',
  summary: 'Prepare to run image(s) in a pod in rkt',
  flags: PREPARE_FLAGS,
  rawArgs: true,
  async run(ctx) {
    const parsed = parseRunArgs(ctx.argv, PREPARE_FLAGS);
    if (parsed.pod.help) return help(ctx, this, PREPARE_FLAGS);
    const fromFile = parsed.pod['pod-manifest'] ? await loadPodManifest(parsed) : undefined;
    const { pod } = fromFile ? await preparePodFromManifest(ctx, parsed, fromFile) : await preparePodFromArgs(ctx, parsed);
    const done = movePod(pod, 'prepared');
    if (!done) throw new RktError('STATE', `pod ${pod.uuid} vanished while being prepared`);
    // A prepared pod has no owner until run-prepared claims it (removed only now: in
    // prepare/, a pod without a live owner is an aborted one that gc discards).
    rmSync(join(done.dir, 'owner'), { force: true });
    ctx.stdout.write(`${pod.uuid}\n`);
    return 0;
  },
};
