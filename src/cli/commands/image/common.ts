// Shared by the image subcommands: opening the store, resolving names.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dataDir } from '../../../config/files.ts';
import type { GlobalOptions } from '../../../config/global.ts';
import { RktError } from '../../../lib/errors.ts';
import { Store } from '../../../image/store/store.ts';

export function openStore(g: GlobalOptions): Store {
  return Store.open(dataDir(g));
}

/** Prepares an output directory: refuses a non-empty one unless overwrite (then empties it). */
export function prepareOutputDir(dir: string, overwrite: boolean): void {
  if (!existsSync(dir)) return;
  if (readdirSync(dir).length === 0) return;
  if (!overwrite) throw new RktError('EXISTS', `output directory "${dir}" exists and is not empty`, { hint: 'use --overwrite to replace it' });
  rmSync(dir, { recursive: true, force: true });
}
