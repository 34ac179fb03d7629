// `rkt image export IMAGE OUT.aci`: the stored (uncompressed) ACI, written
// atomically; its SHA-512 is the image ID.
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { findStored } from '../../../image/fetch/fetcher.ts';
import { RktError, usage } from '../../../lib/errors.ts';
import type { Command } from '../../command.ts';
import { openStore } from './common.ts';

export const command: Command = {
  name: 'image export',
  usage: 'image export IMAGE OUTPUT_ACI_FILE',
  summary: 'Export a stored image to an ACI file',
  flags: [{ name: 'overwrite', type: 'bool', default: false, help: 'overwrite output ACI' }],
  async run(ctx, parsed) {
    const [image, dest] = parsed.positionals;
    if (!image || !dest || parsed.positionals.length !== 2) throw usage('image export: an image and an output file are required');
    if (existsSync(dest) && !parsed.values.overwrite) throw new RktError('EXISTS', `output file "${dest}" already exists`, { hint: 'use --overwrite' });
    using store = openStore(ctx.global);
    const row = findStored(store, image);
    const tmp = `${dest}.rkt-tmp-${process.pid}`;
    try {
      copyFileSync(store.blobPath(row.key), tmp);
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new RktError('IO', `cannot export image to ${dest}: ${(e as Error).message}`, { cause: e });
    }
    return 0;
  },
};
