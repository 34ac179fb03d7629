import { dataDir } from '../../../config/files.ts';
import { parseDuration } from '../../../lib/duration.ts';
import { gcPods } from '../../../pod/gc.ts';
import type { Command } from '../../command.ts';

export const command: Command = {
  name: 'gc',
  usage: 'gc [--grace-period=duration] [--expire-prepared=duration]',
  summary: 'Garbage collect rkt pods no longer in use',
  description: `Garbage collect rkt pods no longer in use

Exited pods are first marked as garbage, then removed (with their mounts,
containers and files) once they have been marked for longer than the grace
period. Prepared pods older than --expire-prepared are removed too.`,
  flags: [
    { name: 'grace-period', type: 'string', default: '30m0s', help: 'duration to wait before discarding inactive pods from garbage' },
    { name: 'expire-prepared', type: 'string', default: '24h0m0s', help: 'duration to wait before expiring prepared pods' },
    { name: 'mark-only', type: 'bool', default: false, help: 'if set to true, only the "mark" phase of the garbage collection process will be executed' },
  ],
  async run(ctx, parsed) {
    const v = parsed.values;
    gcPods(dataDir(ctx.global), {
      gracePeriod: parseDuration(v['grace-period'] as string, '--grace-period'),
      expirePrepared: parseDuration(v['expire-prepared'] as string, '--expire-prepared'),
      markOnly: v['mark-only'] as boolean,
      onMark: (p) => ctx.stderr.write(`moving pod "${p.uuid}" to garbage\n`),
      onCollect: (p) => ctx.stdout.write(`Garbage collecting pod "${p.uuid}"\n`),
    });
    return 0;
  },
};
