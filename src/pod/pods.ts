// Pods on disk (rkt's layout): DATA/pods/<place>/<uuid>/. The place is the
// state; moves between places are atomic renames. Within a place, a live
// owner (the preparing process, or the pod's monitor) makes the difference
// between preparing/aborted prepare and running/exited.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RktError, isErrno } from '../lib/errors.ts';
import { isAlive, parseProcId, type ProcId } from '../lib/proc.ts';
import type { PodManifest } from './manifest.ts';

export const PLACES = ['embryo', 'prepare', 'prepared', 'run', 'exited-garbage', 'garbage'] as const;
export type Place = (typeof PLACES)[number];

export type PodState = 'embryo' | 'preparing' | 'aborted prepare' | 'prepared' | 'running' | 'exited' | 'exited garbage' | 'deleting' | 'garbage';

export interface Pod {
  uuid: string;
  place: Place;
  dir: string;
  dataDir: string;
}

export function podsDir(dataDir: string, place?: Place): string {
  return place ? join(dataDir, 'pods', place) : join(dataDir, 'pods');
}

export function ensurePodDirs(dataDir: string): void {
  for (const p of PLACES) mkdirSync(podsDir(dataDir, p), { recursive: true, mode: 0o750 });
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}

/** readText for files that are often absent: a stat is cheaper than a thrown ENOENT (`rkt list` of many pods). */
export function readTextIfExists(path: string): string | undefined {
  return existsSync(path) ? readText(path) : undefined;
}

export function owner(pod: Pod): ProcId | undefined {
  const t = readText(`${pod.dir}/owner`);
  return t === undefined ? undefined : parseProcId(t);
}

export function ownerAlive(pod: Pod): boolean {
  return isAlive(owner(pod));
}

export function podState(pod: Pod): PodState {
  switch (pod.place) {
    case 'embryo':
      return 'embryo';
    case 'prepare':
      return ownerAlive(pod) ? 'preparing' : 'aborted prepare';
    case 'prepared':
      return 'prepared';
    case 'run':
      return ownerAlive(pod) ? 'running' : 'exited';
    case 'exited-garbage':
      return isAlive(parseProcId(readText(`${pod.dir}/deleter`) ?? '')) ? 'deleting' : 'exited garbage';
    case 'garbage':
      return isAlive(parseProcId(readText(`${pod.dir}/deleter`) ?? '')) ? 'deleting' : 'garbage';
  }
}

/** Pods in every place (a pod caught mid-rename may be missed or seen twice; callers tolerate it). */
export function listPods(dataDir: string): Pod[] {
  const out: Pod[] = [];
  const seen = new Set<string>();
  for (const place of PLACES) {
    let names: string[];
    try {
      names = readdirSync(podsDir(dataDir, place));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) continue;
      throw e;
    }
    const base = `${podsDir(dataDir, place)}/`;
    for (const uuid of names) {
      if (seen.has(uuid) || !/^[0-9a-f-]{36}$/.test(uuid)) continue;
      seen.add(uuid);
      out.push({ uuid, place, dir: base + uuid, dataDir });
    }
  }
  return out;
}

/** Finds a pod by UUID or unambiguous UUID prefix. */
export function findPod(dataDir: string, prefix: string): Pod {
  const p = prefix.trim().toLowerCase();
  if (p === '') throw new RktError('USAGE', 'empty pod UUID');
  const matches = listPods(dataDir).filter((pod) => pod.uuid.startsWith(p) || pod.uuid.replace(/-/g, '').startsWith(p));
  if (matches.length === 0) throw new RktError('NOT_FOUND', `no pod found with UUID "${prefix}"`);
  if (matches.length > 1) throw new RktError('AMBIGUOUS', `ambiguous UUID "${prefix}": ${matches.length} pods match`);
  return matches[0] as Pod;
}

/** Re-locates a pod that may have moved since it was found. */
export function refresh(pod: Pod): Pod | undefined {
  for (const place of PLACES) {
    const dir = join(podsDir(pod.dataDir, place), pod.uuid);
    if (existsSync(dir)) return { ...pod, place, dir };
  }
  return undefined;
}

/** Atomically moves a pod to another place; returns undefined if it was gone (a racing command moved it). */
export function movePod(pod: Pod, to: Place): Pod | undefined {
  const dest = join(podsDir(pod.dataDir, to), pod.uuid);
  try {
    renameSync(pod.dir, dest);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
  return { ...pod, place: to, dir: dest };
}

export function readManifest(pod: Pod): PodManifest | undefined {
  const t = readText(`${pod.dir}/pod`);
  if (t === undefined) return undefined;
  try {
    return JSON.parse(t) as PodManifest;
  } catch {
    return undefined;
  }
}

/** Nanosecond timestamps kept as strings (they exceed 2^53). */
export function readNs(path: string, oftenAbsent = false): bigint | undefined {
  const t = oftenAbsent ? readTextIfExists(path) : readText(path);
  if (t === undefined || !/^\d+$/.test(t.trim())) return undefined;
  return BigInt(t.trim());
}

export function nowNs(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

export function createdNs(pod: Pod): bigint | undefined {
  return readNs(`${pod.dir}/created`);
}

export function startedNs(pod: Pod): bigint | undefined {
  return readNs(`${pod.dir}/started`, true);
}

export interface AppStatus {
  name: string;
  exitCode: number | undefined;
  startedAt: bigint | undefined;
  finishedAt: bigint | undefined;
  pid: number | undefined;
}

export function appStatus(pod: Pod, name: string): AppStatus {
  const base = join(pod.dir, 'apps', name);
  const exit = readTextIfExists(join(base, 'exit'));
  let finishedAt: bigint | undefined;
  if (exit !== undefined) {
    try {
      finishedAt = BigInt(Math.round(statSync(join(base, 'exit')).mtimeMs)) * 1_000_000n;
    } catch {
      finishedAt = undefined;
    }
  }
  const pid = Number(readTextIfExists(join(base, 'pid'))?.trim());
  return {
    name,
    exitCode: exit === undefined ? undefined : Number(exit.trim()),
    startedAt: readNs(join(base, 'started'), true),
    finishedAt,
    pid: Number.isInteger(pid) && pid > 0 ? pid : undefined,
  };
}

export function podPid(pod: Pod): number | undefined {
  const t = readText(join(pod.dir, 'pause', 'pid')) ?? (() => {
    const m = readManifest(pod);
    const first = m?.apps[0]?.name;
    return first ? readText(join(pod.dir, 'apps', first, 'pid')) : undefined;
  })();
  const n = Number(t?.trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
