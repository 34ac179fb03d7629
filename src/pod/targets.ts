// Mount and volume targets inside an app's root filesystem. runc resolves
// a target the way secureJoin does (symlinks followed, clamped to the
// root), so a link could never make a mount land outside the rootfs; but a
// target reached through a symlink that, read on the host, points outside
// the rootfs (an absolute target, or `..` climbing above the root) is
// refused with a clear error instead of being silently re-rooted:
// `/data -> /srv/data` in an image means the host's /srv/data to anyone
// reading the tree from the host, and mounting a volume "there" would
// actually shadow the image's own /srv/data. Symlinks that stay inside
// (`data -> ../srv/data` from the root's child) are followed.
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { RktError } from '../lib/errors.ts';

const MAX_LINKS = 255;

function refuse(app: string, target: string, via: string): never {
  throw new RktError('UNSAFE_PATH', `app "${app}": mount target ${target} goes through the symlink ${via}, which points outside the app's root filesystem`, {
    hint: 'give the path the link resolves to inside the image as the target, or fix the image',
  });
}

/** Throws if resolving `target` inside `rootfs` meets a symlink that points outside it. */
export function checkMountTarget(rootfs: string, target: string, app: string): void {
  const todo = target.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  // Components still to walk that came from a symlink's target, and which link.
  let fromLink: { left: number; via: string } | undefined;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (fromLink && --fromLink.left < 0) fromLink = undefined;
    if (part === '..') {
      if (done.length === 0 && fromLink) refuse(app, target, fromLink.via);
      done.pop();
      continue;
    }
    const candidate = join(rootfs, ...done, part);
    let link: string | undefined;
    try {
      if (lstatSync(candidate).isSymbolicLink()) link = readlinkSync(candidate);
    } catch {
      link = undefined;
    }
    if (link === undefined) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new RktError('UNSAFE_PATH', `app "${app}": too many levels of symbolic links in mount target ${target}`);
    const via = `/${[...done, part].join('/')} -> ${link}`;
    if (link.startsWith('/')) refuse(app, target, via);
    const parts = link.split('/').filter((p) => p !== '' && p !== '.');
    fromLink = { left: parts.length, via };
    todo.unshift(...parts);
  }
}
