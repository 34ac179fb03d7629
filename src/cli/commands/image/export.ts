// `rkt image export IMAGE OUT.aci`: the stored (uncompressed) ACI, written
// atomically; its SHA-512 is the image ID.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
      if (row.kind === 'docker') {
        // A Docker image exports as one flattened ACI (as docker2aci's squash did).
        const { renderImage } = await import('../../../image/render.ts');
        const tree = await renderImage(store, row);
        const mdir = `${tmp}.d`;
        mkdirSync(mdir);
        try {
          const { dependencies: _deps, ...m } = row.manifest;
          writeFileSync(join(mdir, 'manifest'), JSON.stringify(m));
          execFileSync('tar', ['--numeric-owner', '--xattrs', '-cf', tmp, '-C', mdir, 'manifest', '-C', tree, 'rootfs']);
        } finally {
          rmSync(mdir, { recursive: true, force: true });
        }
      } else copyFileSync(store.blobPath(row.key), tmp);
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new RktError('IO', `cannot export image to ${dest}: ${(e as Error).message}`, { cause: e });
    }
    return 0;
  },
};
