// `rkt image rm IMAGE…`: by ID prefix or name; reports per image.
import { findStored } from '../../../image/fetch/fetcher.ts';
import { RktError, errMessage, usage } from '../../../lib/errors.ts';
import type { Command } from '../../command.ts';
import { openStore } from './common.ts';
import { treesInUse } from './gc.ts';
import { dataDir } from '../../../config/files.ts';

export const command: Command = {
  name: 'image rm',
  usage: 'image rm IMAGEID...',
  summary: 'Remove one or more images with the given IDs or image names from the local store',
  flags: [],
  async run(ctx, parsed) {
    if (parsed.positionals.length === 0) throw usage('image rm: at least one image ID or name is required');
    using store = openStore(ctx.global);
    // A pod that still mounts the image's tree keeps it (image gc removes it later).
    const inUse = treesInUse(dataDir(ctx.global));
    let removed = 0;
    let failed = 0;
    for (const arg of parsed.positionals) {
      try {
        const row = findStored(store, arg);
        store.remove(row.key, inUse);
        ctx.stdout.write(`successfully removed aci for image: "${row.key}" ("${row.name}")\n`);
        removed++;
      } catch (e) {
        failed++;
        ctx.stderr.write(`rkt: image rm: ${errMessage(e)}\n`);
      }
    }
    if (removed > 0) ctx.stdout.write(`${removed} image(s) successfully removed\n`);
    if (failed > 0) throw new RktError('NOT_FOUND', `${failed} image(s) could not be removed`);
    return 0;
  },
};
