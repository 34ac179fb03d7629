// The app environment, with rkt's precedence (last wins):
// host env (--inherit-env) < image env < --set-env-file < --set-env < --environment,
// then rkt's defaults for what is still unset, and AC_APP_NAME. Pure.
import { usage } from '../lib/errors.ts';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `--set-env-file`: KEY=VALUE lines; blank lines and lines starting with # or ; are ignored. */
export function parseEnvFile(text: string, file: string): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw usage(`invalid line in ${file}: "${line}" is not KEY=VALUE`);
    out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

export interface EnvSources {
  host?: Record<string, string | undefined>;
  image: readonly { name: string; value: string }[];
  envFile: readonly [string, string][];
  setEnv: readonly [string, string][];
  environment: readonly [string, string][];
  appName: string;
}

export function buildEnv(s: EnvSources): { name: string; value: string }[] {
  const env = new Map<string, string>();
  if (s.host) for (const [k, v] of Object.entries(s.host)) if (v !== undefined) env.set(k, v);
  for (const e of s.image) env.set(e.name, e.value);
  for (const [k, v] of s.envFile) env.set(k, v);
  for (const [k, v] of s.setEnv) env.set(k, v);
  for (const [k, v] of s.environment) env.set(k, v);
  const defaults: [string, string][] = [['PATH', DEFAULT_PATH], ['SHELL', '/bin/sh'], ['USER', 'root'], ['LOGNAME', 'root'], ['HOME', '/root']];
  for (const [k, v] of defaults) if (!env.has(k)) env.set(k, v);
  env.set('AC_APP_NAME', s.appName);
  return [...env].map(([name, value]) => ({ name, value }));
}
