// `rkt export [--app=NAME] UUID OUT.aci`: an exited pod's app, with the
// changes it made, as a new ACI (the image's manifest plus the merged
// rootfs: the tree below, the app's overlay upper dir on top).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { RktError, usage } from '../../../lib/errors.ts';
import { podState, readManifest } from '../../../pod/pods.ts';
import type { Plan } from '../../../pod/plan.ts';
import type { Command } from '../../command.ts';
import { lookupPod } from './common.ts';

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
  if (r.status !== 0) throw new RktError('IO', `${what}: ${r.stderr?.toString().trim() || r.error?.message || `exit ${r.status}`}`);
}

export const command: Command = {
  name: 'export',
  usage: 'export [--app=APPNAME] UUID OUTPUT.aci',
  summary: 'Export an app from an exited pod to an ACI file',
  flags: [
    { name: 'app', type: 'string', default: '', help: 'name of the app to export within the specified pod' },
    { name: 'overwrite', type: 'bool', default: false, help: 'overwrite output ACI' },
  ],
  async run(ctx, parsed) {
    const [uuid, outArg] = parsed.positionals;
    if (!uuid || !outArg || parsed.positionals.length !== 2) throw usage('export: a pod UUID and an output file are required');
    if (!outArg.endsWith('.aci')) throw usage(`export: the output file name must end in ".aci" (got "${outArg}")`);
    const out = resolve(outArg);
    if (existsSync(out) && !parsed.values.overwrite) throw new RktError('EXISTS', `output file "${outArg}" already exists`, { hint: 'use --overwrite' });
    const pod = lookupPod(ctx.global, uuid);
    const state = podState(pod);
    if (!state.startsWith('exited')) throw new RktError('STATE', `pod ${pod.uuid} is ${state}: only exited pods can be exported`);
    const manifest = readManifest(pod);
    const plan = JSON.parse(readFileSync(join(pod.dir, 'plan.json'), 'utf8')) as Plan;
    const name = (parsed.values.app as string) || (plan.apps.length === 1 ? plan.apps[0]?.name : undefined);
    if (!name) throw new RktError('USAGE', `pod contains multiple apps: ${plan.apps.map((a) => a.name).join(', ')}`, { hint: 'choose one with --app' });
    const app = plan.apps.find((a) => a.name === name);
    const ra = manifest?.apps.find((a) => a.name === name);
    if (!app || !ra) throw new RktError('NOT_FOUND', `app "${name}" not found in pod ${pod.uuid}`);
    const { Store } = await import('../../../image/store/store.ts');
    const { dataDir } = await import('../../../config/files.ts');
    let imageManifest: unknown;
    {
      using store = Store.open(dataDir(ctx.global));
      imageManifest = store.get(app.imageKey)?.manifest;
    }
    if (!imageManifest) throw new RktError('NOT_FOUND', `image ${app.imageKey} of app "${name}" is no longer in the store`);

    const work = mkdtempSync(join(dirname(out), '.rkt-export-'));
    const rootfs = join(work, 'rootfs');
    let mounted = false;
    try {
      mkdirSync(rootfs);
      writeFileSync(join(work, 'manifest'), JSON.stringify(imageManifest));
      const appDir = join(pod.dir, 'apps', name);
      const source = plan.noOverlay ? join(appDir, 'rootfs') : undefined;
      if (!source) {
        // Read-only overlay of the app's changes over the image tree (no workdir needed).
        run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${join(appDir, 'upper')}:${app.treeRootfs}`, rootfs], 'cannot mount the app rootfs');
        mounted = true;
      }
      const tmp = `${out}.rkt-tmp-${process.pid}`;
      run('tar', ['--numeric-owner', '--xattrs', '-C', source ? dirname(source) : work, '-cf', tmp, ...(source ? [] : ['manifest']), 'rootfs'], 'cannot write the ACI');
      if (source) {
        // --no-overlay pods: the rootfs lives in the pod dir; add the manifest in a second step.
        run('tar', ['--numeric-owner', '-C', work, '-rf', tmp, 'manifest'], 'cannot write the ACI');
      }
      renameSync(tmp, out);
    } finally {
      if (mounted) spawnSync('umount', ['-l', rootfs]);
      rmSync(work, { recursive: true, force: true });
      rmSync(`${out}.rkt-tmp-${process.pid}`, { force: true });
    }
    return 0;
  },
};
