import { RktError } from '../../../lib/errors.ts';
import { readManifest } from '../../../pod/pods.ts';
import type { Command } from '../../command.ts';
import { out } from '../../command.ts';
import { lookupPod, podArgs } from './common.ts';

export const command: Command = {
  name: 'cat-manifest',
  usage: 'cat-manifest --uuid-file=FILE | UUID',
  summary: 'Inspect and print the pod manifest',
  flags: [
    { name: 'pretty-print', type: 'bool', default: true, help: 'apply indent to format the output' },
    { name: 'uuid-file', type: 'string', default: '', help: 'read pod UUID from file instead of argument' },
  ],
  async run(ctx, parsed) {
    const [uuid] = podArgs(parsed.positionals, (parsed.values['uuid-file'] as string) || undefined, 1);
    const pod = lookupPod(ctx.global, uuid as string);
    const m = readManifest(pod);
    if (!m) throw new RktError('STATE', `pod ${pod.uuid} has no manifest yet`);
    out(ctx, JSON.stringify(m, null, parsed.values['pretty-print'] ? '\t' : undefined));
    return 0;
  },
};
