// "Nothing leaked": a snapshot of host state that rkt could leave behind
// (mounts under our temp dirs, runc/crun containers, network namespaces, veth
// links, iptables chains, stray processes), taken before an integration file
// and compared after it.
//
// Attribution, so that other people's work on the same machine is not
// counted: every process started by this test process inherits the marker
// RKT_TEST_RUN=<random> in its environment, and only marked processes count;
// only mounts under dirs registered with track() (makeEnv does it) count.
// Containers, netns, veths and iptables chains are host-wide.
//
//   const before = snapshot();            // in before()
//   after(() => assertNoLeaks(before));   // last after() of the file
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

export interface Snapshot {
  mounts: Set<string>;
  containers: Set<string>;
  netns: Set<string>;
  veths: Set<string>;
  iptables: Set<string>;
  /** pid -> cmdline, for processes we care about (see `interesting`). */
  processes: Map<number, string>;
}

const MARKER = 'RKT_TEST_RUN';
if (!process.env[MARKER]) process.env[MARKER] = `${process.pid}-${randomBytes(6).toString('hex')}`;
const marker = `${MARKER}=${process.env[MARKER]}`;

/** Dirs under which mounts count as ours. */
const roots = new Set<string>();
export function track(dir: string): void {
  roots.add(dir);
}

function lines(cmd: string, args: string[]): string[] {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return [];
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
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (mine.has(pid)) continue;
    let cmdline = '';
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (!environ.split('\0').includes(marker)) continue;
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    out.set(pid, cmdline);
  }
  return out;
}

export function snapshot(): Snapshot {
  return {
    mounts: mounts(),
    containers: new Set([...lines('runc', ['list', '-q']).map((c) => `runc:${c}`), ...lines('crun', ['list', '-q']).map((c) => `crun:${c}`)]),
    netns: new Set(lines('ip', ['netns', 'list']).map((l) => l.split(' ')[0] ?? l)),
    veths: new Set(lines('ip', ['-o', 'link', 'show', 'type', 'veth']).map((l) => l.split(':')[1]?.trim().split('@')[0] ?? l)),
    iptables: new Set(lines('iptables-save', []).filter((l) => /RKT|CNI-/.test(l))),
    processes: processes(),
  };
}

/** The differences that count as leaks (things present now but not before). */
export function leaksSince(before: Snapshot, now: Snapshot = snapshot()): string[] {
  const out: string[] = [];
  const diff = (what: string, a: Set<string>, b: Set<string>): void => {
    for (const x of b) if (!a.has(x)) out.push(`${what}: ${x}`);
  };
  diff('mount', before.mounts, now.mounts);
  diff('container', before.containers, now.containers);
  diff('netns', before.netns, now.netns);
  diff('veth', before.veths, now.veths);
  diff('iptables', before.iptables, now.iptables);
  for (const [pid, cmd] of now.processes) if (!before.processes.has(pid)) out.push(`process ${pid}: ${cmd}`);
  return out;
}

/**
 * Throws if anything leaked. Processes get up to `graceMs` to go away (a
 * killed child may still be exiting).
 */
export async function assertNoLeaks(before: Snapshot, graceMs = 3000): Promise<void> {
  const deadline = Date.now() + graceMs;
  let leaks = leaksSince(before);
  while (leaks.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    leaks = leaksSince(before);
  }
  if (leaks.length > 0) throw new Error(`leaked host state:\n  ${leaks.join('\n  ')}`);
}
