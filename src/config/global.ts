// Global (persistent) flags and the context every command receives.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FlagDef, FlagValues } from '../cli/flags.ts';
import { parseInsecureOptions, type InsecureOption } from './insecure.ts';

export const DEFAULT_DATA_DIR = '/var/lib/rkt';
export const DEFAULT_SYSTEM_CONFIG = '/usr/lib/rkt';
export const DEFAULT_LOCAL_CONFIG = '/etc/rkt';

export const GLOBAL_FLAGS: readonly FlagDef[] = [
  { name: 'dir', type: 'string', default: DEFAULT_DATA_DIR, help: 'rkt data directory' },
  { name: 'system-config', type: 'string', default: DEFAULT_SYSTEM_CONFIG, help: 'system configuration directory' },
  { name: 'local-config', type: 'string', default: DEFAULT_LOCAL_CONFIG, help: 'local configuration directory' },
  { name: 'user-config', type: 'string', default: '', help: 'user configuration directory' },
  {
    name: 'insecure-options',
    type: 'strings',
    default: ['none'],
    help: 'comma-separated list of security features to disable. Allowed values: "none", "image", "tls", "ondisk", "http", "pubkey", "capabilities", "paths", "seccomp", "all-fetch", "all-run", "all"',
    arg: 'string',
  },
  { name: 'trust-keys-from-https', type: 'bool', default: false, help: 'automatically trust gpg keys fetched from https' },
  { name: 'debug', type: 'bool', default: false, help: 'print out more debug information to stderr' },
  { name: 'help', short: 'h', type: 'bool', default: false, help: 'help for rkt', hidden: true },
];

export interface GlobalOptions {
  /** Data dir, absolute. `dirSet` tells whether the user gave --dir (it beats paths.d). */
  dir: string;
  dirSet: boolean;
  systemConfig: string;
  localConfig: string;
  userConfig: string;
  insecure: Set<InsecureOption>;
  trustKeysFromHttps: boolean;
  debug: boolean;
}

function absolute(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

export function globalOptions(values: FlagValues, set: ReadonlySet<string>): GlobalOptions {
  return {
    dir: absolute(values.dir as string),
    dirSet: set.has('dir'),
    systemConfig: values['system-config'] as string,
    localConfig: values['local-config'] as string,
    userConfig: values['user-config'] as string,
    insecure: parseInsecureOptions(values['insecure-options'] as string[]),
    trustKeysFromHttps: values['trust-keys-from-https'] as boolean,
    debug: values.debug as boolean,
  };
}
