// `rkt rm UUID…`: removes exited, prepared or aborted pods at once.
import { RktError, errMessage } from '../../../lib/errors.ts';
import { claimDeletion } from '../../../pod/gc.ts';
import { podState } from '../../../pod/pods.ts';
import { teardown } from '../../../pod/teardown.ts';
import type { Command } from '../../command.ts';
import { lookupPod, podArgs } from './common.ts';

export const command: Command = {
  name: 'rm',
  usage: 'rm --uuid-file=FILE | UUID ...',
  summary: 'Remove all files and resources associated with an exited pod',
  flags: [{ name: 'uuid-file', type: 'string', default: '', help: 'read pod UUID from file instead of argument' }],
  async run(ctx, parsed) {
    const uuids = podArgs(parsed.positionals, (parsed.values['uuid-file'] as string) || undefined);
    let failed = 0;
    for (const u of uuids) {
      try {
        const pod = lookupPod(ctx.global, u);
        const state = podState(pod);
        if (state === 'running' || state === 'preparing' || state === 'embryo' || state === 'deleting') {
          throw new RktError('STATE', `pod "${pod.uuid}" is ${state}: stop it first`);
        }
        if (!claimDeletion(pod)) throw new RktError('STATE', `pod "${pod.uuid}" is being deleted by another process`);
        teardown(pod);
        ctx.stdout.write(`"${pod.uuid}"\n`);
      } catch (e) {
        failed++;
        ctx.stderr.write(`rkt: rm: ${errMessage(e)}\n`);
      }
    }
    if (failed > 0) throw new RktError('STATE', `${failed} pod(s) could not be removed`);
    return 0;
  },
};
