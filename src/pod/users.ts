// User and group resolution inside an image (rkt: numeric id, else a path
// whose owner is taken, else a name from the image's /etc/passwd or
// /etc/group). Files are read through secureJoin so a symlinked
// /etc/passwd cannot make us read the host's.
import { readFileSync, statSync } from 'node:fs';
import { RktError } from '../lib/errors.ts';
import { secureJoin } from '../lib/securejoin.ts';

function readLines(root: string, path: string): string[] {
  try {
    return readFileSync(secureJoin(root, path), 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** Parses passwd/group text: name → [id, primary gid (passwd only)]. Pure. */
export function parseDb(lines: readonly string[]): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const id = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(id)) out.set(f[0] as string, [id, Number.isInteger(gid) ? gid : id]);
  }
  return out;
}

function owner(root: string, path: string, which: 'uid' | 'gid', what: string): number {
  try {
    return statSync(secureJoin(root, path))[which];
  } catch {
    throw new RktError('NOT_FOUND', `${what} "${path}": no such file in the image`);
  }
}

export function resolveUser(root: string, user: string): { uid: number; gid: number | undefined } {
  if (/^\d+$/.test(user)) return { uid: Number(user), gid: undefined };
  if (user.startsWith('/')) return { uid: owner(root, user, 'uid', 'user'), gid: undefined };
  const hit = parseDb(readLines(root, '/etc/passwd')).get(user);
  if (!hit) throw new RktError('NOT_FOUND', `unknown user "${user}": not in the image's /etc/passwd`);
  return { uid: hit[0], gid: hit[1] };
}

export function resolveGroup(root: string, group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  if (group.startsWith('/')) return owner(root, group, 'gid', 'group');
  const hit = parseDb(readLines(root, '/etc/group')).get(group);
  if (!hit) throw new RktError('NOT_FOUND', `unknown group "${group}": not in the image's /etc/group`);
  return hit[0];
}
