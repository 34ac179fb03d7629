// From an app's resolved isolators (stage1/isolators.ts) and the pod's
// --insecure-options to the OCI process/linux fields. Pure.
import type { AppSecurity } from './isolators.ts';
import { cpuQuota } from './isolators.ts';
import { DEFAULT_CAPS } from './oci.ts';
import { defaultAllowList, ociSeccomp } from './seccomp.ts';

export interface SecurityOptions {
  /** --insecure-options=capabilities: every capability the caller holds. */
  insecureCapabilities: boolean;
  /** --insecure-options=seccomp: no filter at all. */
  insecureSeccomp: boolean;
  /** The caller's bounding set. */
  allCaps: string[];
}

export interface OciSecurity {
  caps: string[];
  seccomp: Record<string, unknown> | undefined;
  noNewPrivileges: boolean;
  resources: Record<string, unknown>;
  oomScoreAdj: number | undefined;
}

/** OCI linux.resources for memory and CPU isolators. */
export function ociResources(s: AppSecurity): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  if (s.memoryBytes !== undefined) r.memory = { limit: s.memoryBytes };
  const cpu: Record<string, number> = {};
  if (s.cpuShares !== undefined) cpu.shares = s.cpuShares;
  if (s.cpuMillis !== undefined) Object.assign(cpu, cpuQuota(s.cpuMillis));
  if (Object.keys(cpu).length) r.cpu = cpu;
  return r;
}

export function ociSecurity(s: AppSecurity | undefined, uid: number, o: SecurityOptions): OciSecurity {
  const sec: AppSecurity = s ?? { seccomp: { kind: 'allow', syscalls: defaultAllowList() }, noNewPrivileges: uid !== 0 };
  const caps = o.insecureCapabilities ? o.allCaps : (sec.caps ?? DEFAULT_CAPS).filter((c) => o.allCaps.includes(c));
  const seccomp = o.insecureSeccomp || !sec.seccomp ? undefined : ociSeccomp(sec.seccomp);
  // rkt forces no_new_privs for non-root apps with a filter; an explicit
  // os/linux/no-new-privileges isolator applies in any case.
  // rkt forces no_new_privs for non-root apps with a filter; an explicit
  // os/linux/no-new-privileges isolator applies in any case.
  const noNewPrivileges = sec.noNewPrivileges || (seccomp !== undefined && uid !== 0);
  return {
    caps,
    seccomp,
    noNewPrivileges,
    resources: ociResources(sec),
    oomScoreAdj: sec.oomScoreAdj,
  };
}
