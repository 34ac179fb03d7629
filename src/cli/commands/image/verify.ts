// `rkt image verify IMAGE…`: re-hashes each rendered tree against the hash
// recorded when it was rendered.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findStored } from '../../../image/fetch/fetcher.ts';
import { renderImage } from '../../../image/render.ts';
import { hashTree } from '../../../image/store/treehash.ts';
import { RktError, errMessage, usage } from '../../../lib/errors.ts';
import type { Command } from '../../command.ts';
import { openStore } from './common.ts';

export const command: Command = {
  name: 'image verify',
  usage: 'image verify IMAGE...',
  summary: 'Verify one or more rendered images in the local store',
  flags: [],
  async run(ctx, parsed) {
    if (parsed.positionals.length === 0) throw usage('image verify: at least one image is required');
    using store = openStore(ctx.global);
    let failed = 0;
    for (const arg of parsed.positionals) {
      try {
        const row = findStored(store, arg);
        const tree = await renderImage(store, row);
        const want = readFileSync(join(tree, 'hash'), 'utf8').trim();
        const got = hashTree(join(tree, 'rootfs')).hash;
        if (got !== want) throw new RktError('INVALID_IMAGE', `rendered tree of image "${row.key}" ("${row.name}") does not match its recorded hash: it was modified`);
        ctx.stdout.write(`successfully verified checksum for image: "${row.key}" ("${row.name}")\n`);
      } catch (e) {
        failed++;
        ctx.stderr.write(`rkt: image verify: ${errMessage(e)}\n`);
      }
    }
    if (failed > 0) throw new RktError('INVALID_IMAGE', `${failed} image(s) failed verification`);
    return 0;
  },
};
