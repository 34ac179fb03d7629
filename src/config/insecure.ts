// --insecure-options values, as rkt/flag/secflags.go.
import { usage } from '../lib/errors.ts';

export type InsecureOption = 'image' | 'tls' | 'ondisk' | 'http' | 'pubkey' | 'capabilities' | 'paths' | 'seccomp';

const GROUPS: Record<string, readonly InsecureOption[]> = {
  none: [],
  image: ['image'],
  tls: ['tls'],
  ondisk: ['ondisk'],
  http: ['http'],
  pubkey: ['pubkey'],
  capabilities: ['capabilities'],
  paths: ['paths'],
  seccomp: ['seccomp'],
  'all-fetch': ['image', 'tls', 'http', 'pubkey'],
  'all-run': ['capabilities', 'paths', 'seccomp'],
  all: ['image', 'tls', 'ondisk', 'http', 'pubkey', 'capabilities', 'paths', 'seccomp'],
};

export const INSECURE_VALUES = Object.keys(GROUPS);

/** Parses a comma list (possibly given several times) into the set of lifted checks. */
export function parseInsecureOptions(values: readonly string[]): Set<InsecureOption> {
  const out = new Set<InsecureOption>();
  for (const value of values) {
    for (const raw of value.split(',')) {
      const v = raw.trim().toLowerCase();
      if (v === '') continue;
      const group = GROUPS[v];
      if (!group) throw usage(`invalid value "${raw}" for --insecure-options; accepted: ${INSECURE_VALUES.join(', ')}`);
      for (const o of group) out.add(o);
    }
  }
  return out;
}
