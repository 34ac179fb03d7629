import { findStored } from '../../../image/fetch/fetcher.ts';
import { usage } from '../../../lib/errors.ts';
import type { Command } from '../../command.ts';
import { out } from '../../command.ts';
import { openStore } from './common.ts';

export const command: Command = {
  name: 'image cat-manifest',
  usage: 'image cat-manifest IMAGE',
  summary: 'Inspect and print the image manifest',
  flags: [{ name: 'pretty-print', type: 'bool', default: true, help: 'apply indent to format the output' }],
  async run(ctx, parsed) {
    if (parsed.positionals.length !== 1) throw usage('image cat-manifest: exactly one image is required');
    using store = openStore(ctx.global);
    const row = findStored(store, parsed.positionals[0] as string);
    out(ctx, JSON.stringify(row.manifest, null, parsed.values['pretty-print'] ? '\t' : undefined));
    return 0;
  },
};
