import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RktError, usage } from '../../../lib/errors.ts';
import { podState, readManifest } from '../../../pod/pods.ts';
import type { Plan } from '../../../pod/plan.ts';
import type { Command } from '../../command.ts';
import { startPod } from '../run.ts';
import { NET_FLAGS } from '../../../net/pod.ts';
import { lookupPod } from './common.ts';

export const command: Command = {
  name: 'run-prepared',
  usage: 'run-prepared UUID',
  summary: 'Run a prepared application pod in rkt',
  flags: [
    ...NET_FLAGS,
    { name: 'hostname', type: 'string', default: '', help: 'pod\'s hostname (default "rkt-$PODUUID")' },
    { name: 'interactive', type: 'bool', default: false, help: 'run pod interactively' },
    { name: 'exit-policy', type: 'string', default: 'fail-fast', help: 'fail-fast or all' },
    { name: 'stop-timeout', type: 'int', default: 10, help: 'seconds between SIGTERM and SIGKILL when stopping apps' },
    { name: 'oci-runtime', type: 'string', default: '', help: 'OCI runtime: crun (default when installed), runc, or a path' },
  ],
  async run(ctx, parsed) {
    if (parsed.positionals.length !== 1) throw usage('run-prepared: exactly one pod UUID is required');
    const v = parsed.values;
    const pod = lookupPod(ctx.global, parsed.positionals[0] as string);
    const state = podState(pod);
    if (state !== 'prepared') throw new RktError('STATE', `pod ${pod.uuid} is ${state}, not prepared`);
    const plan = JSON.parse(readFileSync(join(pod.dir, 'plan.json'), 'utf8')) as Plan;
    if (v.interactive && plan.apps.length !== 1) throw usage('--interactive can only be used with exactly one app');
    const exitPolicy = v['exit-policy'] as string;
    if (exitPolicy !== 'fail-fast' && exitPolicy !== 'all') throw usage(`invalid --exit-policy "${exitPolicy}"`);
    const { planNet, startNet } = await import('../../../net/pod.ts');
    const { exposedPortRequests } = await import('../../../net/ports.ts');
    // A pod prepared from a pod manifest forwards the ports the manifest lists.
    const podPorts = exposedPortRequests(readManifest(pod)?.ports as import('../../../net/ports.ts').ExposedPort[] | undefined);
    const network = startNet(await planNet(ctx.global, v, plan.flavor, podPorts), pod.uuid);
    try {
      return await startPod(ctx, pod, plan, {
        network,
        hostname: (v.hostname as string) || `rkt-${pod.uuid}`,
        interactive: v.interactive as boolean,
        exitPolicy: exitPolicy as 'fail-fast' | 'all',
        stopTimeout: v['stop-timeout'] as number,
        runtime: (v['oci-runtime'] as string) || undefined,
        uuidFile: '',
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new RktError('STATE', `pod ${pod.uuid} is already being started`);
      throw e;
    }
  },
};
