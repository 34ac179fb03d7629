// Resolves a path inside a root directory the way the container will see
// it: symlinks are followed, but `..` and absolute targets are clamped to
// the root, so the result never leaves it (as Go's securejoin does).
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { RktError } from './errors.ts';

const MAX_LINKS = 255;

/** Returns the host path of `path` inside `root`; missing components are kept as they are. */
export function secureJoin(root: string, path: string): string {
  const todo = path.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = join(root, ...done, part);
    let target: string | undefined;
    try {
      if (lstatSync(candidate).isSymbolicLink()) target = readlinkSync(candidate);
    } catch {
      target = undefined;
    }
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new RktError('UNSAFE_PATH', `too many levels of symbolic links resolving ${path}`);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return join(root, ...done);
}
