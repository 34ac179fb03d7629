// `rkt image extract` (the image's own ACI contents) and `rkt image render`
// (its tree with dependencies applied), with --rootfs-only and --overwrite.
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { extractTar } from '../../../image/extract.ts';
import { findStored } from '../../../image/fetch/fetcher.ts';
import { renderImage } from '../../../image/render.ts';
import { RktError, usage } from '../../../lib/errors.ts';
import type { Command } from '../../command.ts';
import { openStore, prepareOutputDir } from './common.ts';

function make(kind: 'extract' | 'render'): Command {
  return {
    name: `image ${kind}`,
    usage: `image ${kind} IMAGE OUTPUT_DIR`,
    summary: kind === 'extract' ? 'Extract a stored image to a directory' : 'Render a stored image to a directory with all its dependencies',
    flags: [
      { name: 'rootfs-only', type: 'bool', default: false, help: 'extract rootfs only' },
      { name: 'overwrite', type: 'bool', default: false, help: 'overwrite output directory' },
    ],
    async run(ctx, parsed) {
      const [image, out] = parsed.positionals;
      if (!image || !out || parsed.positionals.length !== 2) throw usage(`image ${kind}: an image and an output directory are required`);
      const dest = resolve(out);
      using store = openStore(ctx.global);
      const row = findStored(store, image);
      prepareOutputDir(dest, parsed.values.overwrite as boolean);
      const rootfsOnly = parsed.values['rootfs-only'] as boolean;
      // Built next to the destination, then renamed: no half-written output.
      const tmp = join(dirname(dest), `.${kind}-${process.pid}-${Date.now()}`);
      try {
        mkdirSync(tmp, { recursive: true });
        const rootfs = rootfsOnly ? tmp : join(tmp, 'rootfs');
        if (kind === 'extract' && row.kind !== 'docker') {
          await extractTar(createReadStream(store.blobPath(row.key)), { dest: rootfs, root: 'rootfs', capture: ['manifest'] });
        } else {
          const tree = await renderImage(store, row);
          mkdirSync(rootfs, { recursive: true });
          execFileSync('cp', ['-a', '--', `${join(tree, 'rootfs')}/.`, rootfs]);
        }
        if (!rootfsOnly) writeFileSync(join(tmp, 'manifest'), JSON.stringify(row.manifest));
        rmSync(dest, { recursive: true, force: true });
        renameSync(tmp, dest);
      } catch (e) {
        rmSync(tmp, { recursive: true, force: true });
        if (e instanceof RktError) throw e;
        throw new RktError('IO', `cannot ${kind} image to ${dest}: ${(e as Error).message}`, { cause: e });
      }
      return 0;
    },
  };
}

export const extractCommand = make('extract');
export const renderCommand = make('render');
