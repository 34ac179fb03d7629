// --private-users: the pod runs in a user namespace mapping container ids
// 0..65535 to an unprivileged host range. Unlike rkt (which chowned a copy
// of the tree and needed --no-overlay, leaving volumes unshifted), nothing
// is chowned: the monitor mounts an *idmapped* bind of the read-only tree
// (mount_setattr(MOUNT_ATTR_IDMAP), kernel >= 5.12) and uses it as the
// overlay's lower layer (overlayfs accepts idmapped lower layers since
// 5.19); the upper dir belongs to the range's root. Volumes are idmapped
// binds too, so host files owned by root look root-owned inside the pod
// and files the app creates there are owned by the host's root.
// See docs/security.md.
import { randomInt } from '../lib/uuid.ts';
import { chmodSync, chownSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RktError } from '../lib/errors.ts';
import type { OciMount } from '../stage1/oci.ts';
import type { Plan, PlannedApp } from './plan.ts';
import type { Pod } from './pods.ts';

export const USERNS_SIZE = 65536;
/** Host ids below this are never used (system and regular users). */
const FIRST_BLOCK = 16; // 16 * 65536 = 1048576
/** Ids stay below 2^31 (some tools treat larger ids as negative). */
const LAST_BLOCK = 2 ** 31 / USERNS_SIZE - 1;

/** A random 65536-aligned range, as rkt picked (`--private-users` without a base). */
export function allocateRange(rand: (min: number, max: number) => number = randomInt): { uidBase: number; count: number } {
  return { uidBase: rand(FIRST_BLOCK, LAST_BLOCK + 1) * USERNS_SIZE, count: USERNS_SIZE };
}

/** Parses `--private-users=BASE[:COUNT]` (stage1's argument form); bare `true` allocates. */
export function parsePrivateUsers(v: string): { uidBase: number; count: number } | undefined {
  if (v === '' || v === 'false') return undefined;
  if (v === 'true') return allocateRange();
  const m = /^(\d+)(?::(\d+))?$/.exec(v);
  if (!m) throw new RktError('USAGE', `invalid --private-users "${v}": expected true, or UIDBASE[:COUNT]`);
  const uidBase = Number(m[1]);
  const count = m[2] ? Number(m[2]) : USERNS_SIZE;
  if (uidBase < 1 || count < 1 || uidBase + count > 2 ** 32 - 1) throw new RktError('USAGE', `invalid --private-users "${v}": the range must lie within 1..2^32-2`);
  return { uidBase, count };
}

/** Where a --private-users pod's container-visible mounts live (removed by teardown). */
export function usernsDir(uuid: string): string {
  return join('/run/rkt/userns', uuid);
}

/** The pause container's empty rootfs, searchable from inside the user namespace. */
export function usernsPauseRootfs(uuid: string, u: { uidBase: number }): string {
  const dir = join(usernsDir(uuid), 'pause', 'rootfs');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chownSync(dir, u.uidBase, u.uidBase);
  for (let d = dirname(dir); d !== '/run'; d = dirname(d)) chmodSync(d, 0o711);
  return dir;
}

function confPath(p: string): string {
  if (/[\t\n]/.test(p)) throw new RktError('USAGE', `path ${JSON.stringify(p)} contains a tab or newline`);
  return p;
}

/**
 * Adds the idmapped mounts of one app to monitor.conf (in place of its
 * overlay line) and returns how to rewrite its bind mounts.
 */
export function prepareUserns(pod: Pod, plan: Plan, app: PlannedApp, conf: string[]): { rootfs: string; mounts: (m: OciMount[]) => OciMount[] } {
  const u = plan.privateUsers as { uidBase: number; count: number };
  const base = join(pod.dir, 'apps', app.name);
  // runc sets up the rootfs and binds from inside the user namespace, where
  // the pod dir (0750, under a data dir that may be 0700) cannot be
  // searched: the mounts the container sees live under a searchable dir.
  const seen = join(usernsDir(pod.uuid), app.name);
  mkdirSync(seen, { recursive: true, mode: 0o711 });
  for (let d = seen; d !== '/run'; d = dirname(d)) chmodSync(d, 0o711);
  const rootfs = join(seen, 'rootfs');
  const ownRootfs = join(base, 'rootfs');
  const idmap = (src: string, target: string) => conf.push(`idmap\t${confPath(src)}\t${confPath(target)}\t${u.uidBase}\t${u.count}`);
  if (plan.noOverlay) {
    // The private copy, seen through an idmapped bind of itself.
    idmap(ownRootfs, rootfs);
  } else {
    const lower = join(base, 'lower');
    const upper = join(base, 'upper');
    const work = join(base, 'work');
    mkdirSync(lower, { recursive: true });
    const top = statSync(app.treeRootfs);
    if (top.uid >= u.count || top.gid >= u.count) throw new RktError('STATE', `the image tree root is owned by ${top.uid}:${top.gid}, outside the pod's id range`);
    chownSync(upper, u.uidBase + top.uid, u.uidBase + top.gid);
    chmodSync(upper, top.mode & 0o7777);
    chownSync(work, u.uidBase, u.uidBase);
    idmap(app.treeRootfs, lower);
    conf.push(`overlay\t${confPath(lower)}\t${confPath(upper)}\t${confPath(work)}\t${confPath(rootfs)}`);
  }
  return {
    rootfs,
    mounts: (mounts) => mounts.map((m, i) => {
      if (m.type !== 'bind') return m;
      let isDir = false;
      try {
        isDir = lstatSync(m.source).isDirectory();
      } catch {
        isDir = false;
      }
      if (!isDir) return m;
      const target = join(seen, 'volumes', String(i));
      idmap(m.source, target);
      // An idmapped mount is not recursive: submounts of a volume are not carried over.
      return { ...m, source: target, options: m.options.map((o) => (o === 'rbind' ? 'bind' : o)) };
    }),
  };
}
