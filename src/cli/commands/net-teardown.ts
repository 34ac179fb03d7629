// `rkt __net-teardown UUID` (hidden): the network teardown of one pod, run by
// the pod monitor's detached cleanup when the pod exits (stage1/monitor.c,
// `cleanup` directive). gc and rm run the same code (pod/teardown.ts).
import { dataDir } from '../../config/files.ts';
import { listPods } from '../../pod/pods.ts';
import { teardownPodNetwork } from '../../net/setup.ts';
import type { Command } from '../command.ts';

export const command: Command = {
  name: '__net-teardown',
  usage: '__net-teardown UUID',
  summary: 'Tear down the networks of an exited pod (internal)',
  flags: [],
  async run(ctx, parsed) {
    const uuid = parsed.positionals[0] ?? '';
    if (!/^[0-9a-f-]{36}$/.test(uuid)) return 254;
    // Wherever the pod is now (gc may have moved it); gone = gc already did it all.
    const pod = listPods(dataDir(ctx.global)).find((p) => p.uuid === uuid);
    if (!pod) return 0;
    const problems = teardownPodNetwork(pod.dir, uuid);
    for (const p of problems) ctx.stderr.write(`rkt: networking: ${p}\n`);
    return 0;
  },
};
