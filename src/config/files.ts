// Configuration files (rkt's Documentation/configuration.md): JSON files
// `*.json` in auth.d, paths.d and stage1.d of the system, local and user
// config dirs, each with rktKind and rktVersion "v1". Later layers override
// earlier ones; the same key twice in one layer is an error.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RktError, isErrno } from '../lib/errors.ts';
import type { GlobalOptions } from './global.ts';

export interface AuthEntry {
  type: 'basic' | 'oauth' | 'aws';
  credentials: Record<string, string>;
}

export interface Config {
  /** By domain (host name). */
  auth: Record<string, AuthEntry>;
  /** By docker registry host. */
  dockerAuth: Record<string, { user: string; password: string }>;
  paths: { data?: string; stage1Images?: string };
  stage1: { name?: string; version?: string; location?: string };
}

function readJsonFiles(dir: string): { file: string; data: Record<string, unknown> }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return [];
    throw e;
  }
  return names.map((n) => {
    const file = join(dir, n);
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      if (typeof data !== 'object' || data === null) throw new Error('not a JSON object');
      if (data.rktVersion !== 'v1') throw new Error(`unsupported rktVersion ${JSON.stringify(data.rktVersion)}`);
      return { file, data };
    } catch (e) {
      throw new RktError('CONFIG', `invalid configuration file ${file}: ${(e as Error).message}`);
    }
  });
}

function str(file: string, v: unknown, what: string): string {
  if (typeof v !== 'string') throw new RktError('CONFIG', `invalid configuration file ${file}: ${what} must be a string`);
  return v;
}

export function configDirs(g: GlobalOptions): string[] {
  return [g.systemConfig, g.localConfig, g.userConfig].filter((d) => d !== '');
}

export function loadConfig(g: GlobalOptions): Config {
  const cfg: Config = { auth: {}, dockerAuth: {}, paths: {}, stage1: {} };
  for (const dir of configDirs(g)) {
    const seenAuth = new Set<string>();
    const seenDocker = new Set<string>();
    for (const { file, data } of readJsonFiles(join(dir, 'auth.d'))) {
      if (data.rktKind === 'auth') {
        const type = str(file, data.type, 'type') as AuthEntry['type'];
        if (!['basic', 'oauth', 'aws'].includes(type)) throw new RktError('CONFIG', `invalid configuration file ${file}: unknown auth type "${type}"`);
        const credentials = (data.credentials ?? {}) as Record<string, string>;
        for (const d of (data.domains ?? []) as string[]) {
          if (seenAuth.has(d)) throw new RktError('CONFIG', `duplicated auth configuration for domain "${d}" in ${dir}`);
          seenAuth.add(d);
          cfg.auth[d] = { type, credentials };
        }
      } else if (data.rktKind === 'dockerAuth') {
        const c = (data.credentials ?? {}) as { user?: string; password?: string };
        for (const r of (data.registries ?? []) as string[]) {
          if (seenDocker.has(r)) throw new RktError('CONFIG', `duplicated docker auth configuration for registry "${r}" in ${dir}`);
          seenDocker.add(r);
          cfg.dockerAuth[r] = { user: c.user ?? '', password: c.password ?? '' };
        }
      } else {
        throw new RktError('CONFIG', `invalid configuration file ${file}: unknown rktKind ${JSON.stringify(data.rktKind)} in auth.d`);
      }
    }
    for (const { file, data } of readJsonFiles(join(dir, 'paths.d'))) {
      if (data.rktKind !== 'paths') throw new RktError('CONFIG', `invalid configuration file ${file}: rktKind must be "paths"`);
      if (data.data !== undefined) cfg.paths.data = str(file, data.data, 'data');
      if (data['stage1-images'] !== undefined) cfg.paths.stage1Images = str(file, data['stage1-images'], 'stage1-images');
    }
    for (const { file, data } of readJsonFiles(join(dir, 'stage1.d'))) {
      if (data.rktKind !== 'stage1') throw new RktError('CONFIG', `invalid configuration file ${file}: rktKind must be "stage1"`);
      if (data.name !== undefined || data.version !== undefined) {
        cfg.stage1.name = str(file, data.name, 'name');
        cfg.stage1.version = str(file, data.version, 'version');
      }
      if (data.location !== undefined) cfg.stage1.location = str(file, data.location, 'location');
    }
  }
  return cfg;
}

/** The data dir: --dir beats paths.d's `data`, which beats the default. */
export function dataDir(g: GlobalOptions): string {
  if (g.dirSet) return g.dir;
  return loadConfig(g).paths.data ?? g.dir;
}
