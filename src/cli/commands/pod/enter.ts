// `rkt enter [--app=NAME] UUID [CMD ARGS…]`: becomes `runc exec` in the
// app's container (with a terminal when stdin is one).
import { RktError, usage } from '../../../lib/errors.ts';
import { podState, readManifest } from '../../../pod/pods.ts';
import { containerId } from '../../../stage1/launch.ts';
import { podRuntime } from '../../../stage1/runtime.ts';
import type { Command } from '../../command.ts';
import { lookupPod } from './common.ts';
import { execve } from '../../../lib/exec.ts';

export const command: Command = {
  name: 'enter',
  usage: 'enter [--app=APPNAME] UUID [CMD [ARGS ...]]',
  summary: 'Enter the namespaces of an app within a rkt pod',
  flags: [{ name: 'app', type: 'string', default: '', help: 'name of the app to enter within the specified pod' }],
  stopAtPositional: true,
  async run(ctx, parsed) {
    const [uuid, ...cmd] = [...parsed.positionals, ...(parsed.rest ?? [])];
    if (!uuid) throw usage('enter: a pod UUID is required');
    const pod = lookupPod(ctx.global, uuid);
    const state = podState(pod);
    if (state !== 'running') throw new RktError('STATE', `pod ${pod.uuid} is not running (${state})`);
    const apps = readManifest(pod)?.apps ?? [];
    let app = parsed.values.app as string;
    if (!app) {
      if (apps.length !== 1) {
        throw new RktError('USAGE', `pod contains multiple apps: ${apps.map((a) => a.name).join(', ')}`, { hint: 'choose one with --app' });
      }
      app = apps[0]?.name as string;
    } else if (!apps.some((a) => a.name === app)) throw new RktError('NOT_FOUND', `app "${app}" not found in pod ${pod.uuid}`);
    // The runtime the pod was started with (crun or runc): its container is in that one's state.
    const runtime = podRuntime(pod.dir);
    const tty = process.stdin.isTTY === true;
    const args = [runtime, 'exec', ...(tty ? ['-t'] : []), containerId(pod.uuid, app), ...(cmd.length ? cmd : ['/bin/bash'])];
    execve(runtime, args);
  },
};
