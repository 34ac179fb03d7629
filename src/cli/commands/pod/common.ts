// Shared by the pod commands: finding pods, --uuid-file, wait helpers.
import { readFileSync } from 'node:fs';
import { dataDir } from '../../../config/files.ts';
import type { GlobalOptions } from '../../../config/global.ts';
import { RktError, usage } from '../../../lib/errors.ts';
import { findPod, type Pod } from '../../../pod/pods.ts';

export function podArgs(positionals: readonly string[], uuidFile: string | undefined, max = Infinity): string[] {
  const out = [...positionals];
  if (uuidFile) {
    if (out.length > 0) throw usage('--uuid-file and UUID arguments cannot be given together');
    let text: string;
    try {
      text = readFileSync(uuidFile, 'utf8');
    } catch (e) {
      throw new RktError('NOT_FOUND', `cannot read --uuid-file ${uuidFile}: ${(e as Error).message}`, { exitCode: 1 });
    }
    out.push(text.trim());
  }
  if (out.length === 0) throw usage('a pod UUID is required');
  if (out.length > max) throw usage(`at most ${max} pod UUID(s) may be given`);
  return out;
}

export function lookupPod(g: GlobalOptions, uuid: string): Pod {
  return findPod(dataDir(g), uuid);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
