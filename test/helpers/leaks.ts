// "Nothing leaked": a snapshot of host state that rkt could leave behind
// (mounts under our temp dirs, runc/crun containers, network namespaces, veth
// links, iptables rules, stray processes), taken before an integration file
// and compared after it.
//
//   const before = snapshot();            // in before()
//   after(() => assertNoLeaks(before));   // last after() of the file
//
// Other people may run rkt on the same machine at the same time, so only
// what is attributable to this test process counts:
// - processes: every process started from here inherits the marker
//   RKT_TEST_RUN=<random> in its environment; only marked ones count;
// - mounts: only under dirs registered with track() (makeEnv does it);
// - containers, netns, veths, iptables rules: only those naming one of our
//   pods (their UUID, or the 12-hex UUID prefix rkt puts in chain names), or,
//   for containers, with a bundle under a tracked dir. Our pods are the
//   UUIDs seen in the pods/ dirs of tracked dirs: recordPods() is called by
//   the rkt() helper after every command and by removeTree() before deleting.
// New host-wide items that cannot be attributed are reported as a note on
// stderr, not as a failure.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Snapshot {
  mounts: Set<string>;
  containers: Set<string>;
  netns: Set<string>;
  veths: Set<string>;
  iptables: Set<string>;
  /** pid -> cmdline of processes carrying our marker. */
  processes: Map<number, string>;
  /** Host settings pods may change (CNI's ptp and bridge plugins turn forwarding on), restored by assertNoLeaks. */
  sysctls: Map<string, string>;
  /** Whether CNI's IPAM state dir existed (host-local creates it), removed by assertNoLeaks if it did not. */
  cniStateExisted: boolean;
}

const HOST_SYSCTLS = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding'];
const CNI_STATE = '/var/lib/cni';

function readSysctls(): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of HOST_SYSCTLS) {
    try {
      out.set(s, readFileSync(s, 'utf8').trim());
    } catch {
      /* not on this kernel */
    }
  }
  return out;
}

/** Puts back what pods legitimately change on the host but a test must not leave changed. */
export function restoreHostSettings(before: Snapshot): void {
  for (const [path, value] of before.sysctls) {
    try {
      if (readFileSync(path, 'utf8').trim() !== value) writeFileSync(path, value);
    } catch {
      /* best effort */
    }
  }
  if (!before.cniStateExisted) rmSync(CNI_STATE, { recursive: true, force: true });
}

const MARKER = 'RKT_TEST_RUN';
if (!process.env[MARKER]) process.env[MARKER] = `${process.pid}-${randomBytes(6).toString('hex')}`;
const marker = `${MARKER}=${process.env[MARKER]}`;

/** Dirs whose mounts and pods are ours. */
const roots = new Set<string>();
/** Pod UUIDs seen under our dirs. */
const ownPods = new Set<string>();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function track(dir: string): void {
  roots.add(dir);
}

function ls(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Records the pods found under `dir/pods/*` and `dir/*` + `/pods/*` (a data dir or an env base). */
export function recordPods(dir: string): void {
  const podRoots = [join(dir, 'pods'), ...ls(dir).map((n) => join(dir, n, 'pods'))];
  for (const pr of podRoots) {
    for (const state of ls(pr)) for (const u of ls(join(pr, state))) if (UUID.test(u)) ownPods.add(u);
  }
}

/** The UUIDs of pods seen so far (for diagnostics). */
export function knownPods(): ReadonlySet<string> {
  return ownPods;
}

function lines(cmd: string, args: string[]): string[] {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (typeof r.stdout !== 'string') return [];
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function mounts(): Set<string> {
  const out = new Set<string>();
  let text = '';
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return out;
  }
  for (const l of text.split('\n')) {
    const f = l.split(' ');
    const mp = f[1] === undefined ? '' : unescapeMount(f[1]);
    if ([...roots].some((r) => mp === r || mp.startsWith(`${r}/`))) out.add(`${mp} (${f[2] ?? '?'})`);
  }
  return out;
}

function containers(): Set<string> {
  const out = new Set<string>();
  for (const rt of ['runc', 'crun']) {
    const r = spawnSync(rt, ['list', '--format', 'json'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0 || typeof r.stdout !== 'string') continue;
    try {
      const list = JSON.parse(r.stdout || 'null') as { id: string; bundle?: string }[] | null;
      for (const c of list ?? []) out.add(`${rt}:${c.id} (bundle ${c.bundle ?? '?'})`);
    } catch {
      for (const id of lines(rt, ['list', '-q'])) out.add(`${rt}:${id}`);
    }
  }
  return out;
}

function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    out.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

function processes(): Map<number, string> {
  const out = new Map<number, string>();
  const mine = ancestors();
  for (const name of ls('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (mine.has(pid)) continue;
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (!environ.split('\0').includes(marker)) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
      out.set(pid, cmdline);
    } catch {
      // gone, a kernel thread, or not readable
    }
  }
  return out;
}

export function snapshot(): Snapshot {
  return {
    mounts: mounts(),
    containers: containers(),
    netns: new Set(lines('ip', ['netns', 'list']).map((l) => l.split(' ')[0] ?? l)),
    veths: new Set(
      lines('ip', ['-o', 'link', 'show', 'type', 'veth']).map((l) => {
        const name = l.split(':')[1]?.trim().split('@')[0] ?? l;
        const ns = /link-netns\s+(\S+)/.exec(l)?.[1];
        return ns ? `${name} (netns ${ns})` : name;
      }),
    ),
    iptables: new Set(lines('iptables-save', []).filter((l) => /RKT|CNI-|rkt:/.test(l))),
    processes: processes(),
    sysctls: readSysctls(),
    cniStateExisted: existsSync(CNI_STATE),
  };
}

function isOurs(item: string): boolean {
  for (const u of ownPods) {
    if (item.includes(u)) return true;
    const short = u.replace(/-/g, '').slice(0, 12);
    if (item.toLowerCase().includes(short)) return true;
  }
  return [...roots].some((r) => item.includes(`bundle ${r}/`));
}

export interface LeakReport {
  /** Attributable to this test process: failures. */
  leaks: string[];
  /** New host-wide items that cannot be attributed (someone else's, probably). */
  foreign: string[];
}

export function leaksSince(before: Snapshot, now: Snapshot = snapshot()): LeakReport {
  for (const r of roots) recordPods(r);
  const leaks: string[] = [];
  const foreign: string[] = [];
  const diff = (what: string, a: Set<string>, b: Set<string>, attribute: boolean): void => {
    for (const x of b) {
      if (a.has(x)) continue;
      if (!attribute || isOurs(x)) leaks.push(`${what}: ${x}`);
      else foreign.push(`${what}: ${x}`);
    }
  };
  diff('mount', before.mounts, now.mounts, false);
  diff('container', before.containers, now.containers, true);
  diff('netns', before.netns, now.netns, true);
  diff('veth', before.veths, now.veths, true);
  diff('iptables', before.iptables, now.iptables, true);
  for (const [pid, cmd] of now.processes) if (!before.processes.has(pid)) leaks.push(`process ${pid}: ${cmd}`);
  return { leaks, foreign };
}

/**
 * Throws if anything attributable leaked. Gives things up to `graceMs` to go
 * away (a killed child may still be exiting).
 */
export async function assertNoLeaks(before: Snapshot, graceMs = 3000): Promise<void> {
  restoreHostSettings(before);
  const deadline = Date.now() + graceMs;
  let report = leaksSince(before);
  while (report.leaks.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    report = leaksSince(before);
  }
  if (report.foreign.length > 0) {
    process.stderr.write(`# note: new host state not attributable to this test file (ignored):\n#   ${report.foreign.join('\n#   ')}\n`);
  }
  if (report.leaks.length > 0) throw new Error(`leaked host state:\n  ${report.leaks.join('\n  ')}`);
}
