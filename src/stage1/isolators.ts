// appc isolators (inventory 5.5): from the image manifest, replaced per
// name by the CLI's per-app flags, validated as rkt does, recorded in the
// pod manifest, and resolved into what the OCI spec needs. Pure.
import { RktError } from '../lib/errors.ts';
import { DEFAULT_CAPS } from './oci.ts';
import { parseSeccompFlag, seccompPolicy, validateSeccomp, type SeccompIsolator, type SeccompPolicy } from './seccomp.ts';

export interface Isolator {
  name: string;
  value: unknown;
}

export const ISO = {
  memory: 'resource/memory',
  cpu: 'resource/cpu',
  cpuShares: 'os/linux/cpu-shares',
  oomScoreAdj: 'os/linux/oom-score-adj',
  capsRetain: 'os/linux/capabilities-retain-set',
  capsRemove: 'os/linux/capabilities-remove-set',
  seccompRetain: 'os/linux/seccomp-retain-set',
  seccompRemove: 'os/linux/seccomp-remove-set',
  noNewPrivs: 'os/linux/no-new-privileges',
} as const;

/** Isolators rkt accepted but did not implement (kept in the manifest, ignored). */
const IGNORED = new Set(['resource/block-bandwidth', 'resource/block-iops', 'resource/network-bandwidth', 'os/linux/selinux-context', 'os/linux/apparmor-profile', 'os/unix/sysctl']);

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const FACTORS: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes-style quantity ("50M", "1G", "512Mi", "500m", "1.5") as a number. */
export function parseQuantity(s: string, what: string): number {
  const m = QUANTITY.exec(s.trim());
  if (!m) throw new RktError('USAGE', `invalid ${what} "${s}": expected a quantity such as 512Mi, 50M, 1G or 500m`);
  return Number(m[1]) * (FACTORS[m[2] ?? ''] as number);
}

/** Memory limit in bytes. */
export function memoryBytes(s: string): number {
  const n = Math.ceil(parseQuantity(s, 'memory limit'));
  if (n < 4096) throw new RktError('USAGE', `memory limit "${s}" is too small (at least 4096 bytes)`);
  return n;
}

/** CPU limit in millicores ("500m" = 500, "1" = 1000). */
export function cpuMillis(s: string): number {
  const n = Math.round(parseQuantity(s, 'CPU limit') * 1000);
  if (n < 1) throw new RktError('USAGE', `CPU limit "${s}" is too small (at least 1m)`);
  return n;
}

/** CFS quota for millicores, with the 100 ms period: rkt's CPUQuota= (milli/10 %). */
export function cpuQuota(millis: number): { quota: number; period: number } {
  return { period: 100_000, quota: Math.max(1000, millis * 100) };
}

function intValue(v: unknown, what: string, min: number, max: number): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new RktError('USAGE', `invalid ${what} "${String(v)}": expected an integer from ${min} to ${max}`);
  return n;
}

function capsList(v: string, what: string): string[] {
  const caps = v.split(',').map((c) => c.trim()).filter((c) => c !== '').map((c) => {
    const up = c.toUpperCase();
    return up.startsWith('CAP_') ? up : `CAP_${up}`;
  });
  if (caps.length === 0) throw new RktError('USAGE', `${what}: empty capability list`);
  return caps;
}

function checkCaps(set: unknown, name: string, known: readonly string[]): string[] {
  if (!Array.isArray(set) || set.some((c) => typeof c !== 'string')) throw new RktError('USAGE', `isolator ${name}: "set" must be a list of capability names`);
  for (const c of set as string[]) if (!known.includes(c)) throw new RktError('USAGE', `isolator ${name}: unknown capability "${c}"`);
  return set as string[];
}

/** The isolators given by the per-app CLI flags (rkt/cli_apps.go). */
export function cliIsolators(f: Record<string, unknown>): Isolator[] {
  const out: Isolator[] = [];
  const str = (k: string) => String(f[k] ?? '');
  if (str('memory')) {
    memoryBytes(str('memory'));
    out.push({ name: ISO.memory, value: { limit: str('memory') } });
  }
  if (str('cpu')) {
    cpuMillis(str('cpu'));
    out.push({ name: ISO.cpu, value: { limit: str('cpu') } });
  }
  if (str('cpu-shares')) out.push({ name: ISO.cpuShares, value: intValue(str('cpu-shares'), '--cpu-shares', 2, 262144) });
  if (str('oom-score-adj')) out.push({ name: ISO.oomScoreAdj, value: intValue(str('oom-score-adj'), '--oom-score-adj', -1000, 1000) });
  const retain = str('caps-retain') || str('cap-retain');
  const remove = str('caps-remove') || str('cap-remove');
  if (retain && remove) throw new RktError('USAGE', 'cannot use both --caps-retain and --caps-remove on the same image');
  if (retain) out.push({ name: ISO.capsRetain, value: { set: capsList(retain, '--caps-retain') } });
  if (remove) out.push({ name: ISO.capsRemove, value: { set: capsList(remove, '--caps-remove') } });
  if (str('seccomp')) {
    const s = parseSeccompFlag(str('seccomp'));
    out.push({ name: s.mode === 'retain' ? ISO.seccompRetain : ISO.seccompRemove, value: { set: s.set, ...(s.errno ? { errno: s.errno } : {}) } });
  }
  return out;
}

const FAMILY: Record<string, string> = {
  [ISO.capsRetain]: 'caps', [ISO.capsRemove]: 'caps',
  [ISO.seccompRetain]: 'seccomp', [ISO.seccompRemove]: 'seccomp',
};

/**
 * The image's isolators with the CLI's replacing them: a CLI isolator
 * replaces the image's of the same name, and a CLI capability (seccomp)
 * set replaces the image's capability (seccomp) sets of either mode, as
 * rkt's flags do.
 */
export function mergeIsolators(image: readonly Isolator[], cli: readonly Isolator[]): Isolator[] {
  const replaced = new Set(cli.flatMap((i) => [i.name, ...(FAMILY[i.name] ? Object.keys(FAMILY).filter((k) => FAMILY[k] === FAMILY[i.name]) : [])]));
  return [...image.filter((i) => !replaced.has(i.name)), ...cli];
}

/** What an app's isolators resolve to. */
export interface AppSecurity {
  /** Capability bounding set (names); undefined = the default set. */
  caps?: string[] | undefined;
  /** Seccomp policy; null = no filter. */
  seccomp: SeccompPolicy | null;
  /** The os/linux/no-new-privileges isolator (false if absent). */
  noNewPrivileges: boolean;
  memoryBytes?: number | undefined;
  cpuMillis?: number | undefined;
  cpuShares?: number | undefined;
  oomScoreAdj?: number | undefined;
}

/**
 * Validates and resolves an app's isolators (rkt's stage1 rules): both
 * capability sets ⇒ error; more than one seccomp isolator ⇒ error;
 * no_new_privs forced on for non-root apps with a seccomp filter.
 */
export function resolveIsolators(isolators: readonly Isolator[], uid: number, knownCaps: readonly string[]): AppSecurity {
  const sec: AppSecurity = { seccomp: null, noNewPrivileges: false };
  let seccompIso: SeccompIsolator | undefined;
  let nSeccomp = 0;
  let capsSeen: string | undefined;
  for (const i of isolators) {
    const v = i.value as Record<string, unknown>;
    switch (i.name) {
      case ISO.memory: {
        const limit = v?.limit;
        if (limit !== undefined) sec.memoryBytes = memoryBytes(String(limit));
        break;
      }
      case ISO.cpu: {
        const limit = v?.limit;
        if (limit !== undefined) sec.cpuMillis = cpuMillis(String(limit));
        break;
      }
      case ISO.cpuShares:
        sec.cpuShares = intValue(i.value, ISO.cpuShares, 2, 262144);
        break;
      case ISO.oomScoreAdj:
        sec.oomScoreAdj = intValue(i.value, ISO.oomScoreAdj, -1000, 1000);
        break;
      case ISO.capsRetain:
      case ISO.capsRemove: {
        if (capsSeen && capsSeen !== i.name) throw new RktError('USAGE', 'an app cannot have both a capabilities-retain-set and a capabilities-remove-set isolator');
        capsSeen = i.name;
        const set = checkCaps(v?.set, i.name, knownCaps);
        sec.caps = i.name === ISO.capsRetain ? [...set] : DEFAULT_CAPS.filter((c) => !set.includes(c));
        break;
      }
      case ISO.seccompRetain:
      case ISO.seccompRemove: {
        if (++nSeccomp > 1) throw new RktError('USAGE', 'too many seccomp isolators specified (at most one per app)');
        const set = v?.set;
        if (!Array.isArray(set) || set.some((s) => typeof s !== 'string')) throw new RktError('USAGE', `isolator ${i.name}: "set" must be a list of syscalls and groups`);
        const errno = v?.errno;
        if (errno !== undefined && typeof errno !== 'string') throw new RktError('USAGE', `isolator ${i.name}: "errno" must be a string`);
        seccompIso = { mode: i.name === ISO.seccompRetain ? 'retain' : 'remove', set: set as string[], ...(errno ? { errno } : {}) };
        validateSeccomp(seccompIso);
        break;
      }
      case ISO.noNewPrivs:
        if (typeof i.value !== 'boolean') throw new RktError('USAGE', `isolator ${ISO.noNewPrivs}: value must be true or false`);
        sec.noNewPrivileges = i.value;
        break;
      default:
        // Unimplemented (IGNORED) and unknown isolators stay in the manifest and do nothing, as in rkt.
        void IGNORED;
        break;
    }
  }
  sec.seccomp = seccompPolicy(seccompIso) ?? null;
  // no_new_privs is forced for non-root apps with a filter at launch
  // (stage1/security.ts), where --insecure-options=seccomp is known.
  void uid;
  return sec;
}
