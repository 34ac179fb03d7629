// Process identity that survives PID reuse: a PID plus its start time
// (field 22 of /proc/PID/stat). Used for pod liveness instead of flock(2),
// which Node cannot call; execve keeps both, so `rkt run` becoming the
// monitor keeps the pod alive in the eyes of other commands.
import { existsSync, readFileSync } from 'node:fs';
import { hasLauncher } from './handoff.ts';

export interface ProcId {
  pid: number;
  start: string;
}

/**
 * The start time of a live process, undefined for no process or a zombie:
 * a killed process whose parent died first waits for PID 1 to reap it, and
 * some PID 1s take their time.
 */
export function startTime(pid: number): string | undefined {
  const path = `/proc/${pid}/stat`;
  // Mostly asked about dead owners (`rkt list` of exited pods): no exception for those.
  if (!existsSync(path)) return undefined;
  try {
    const stat = readFileSync(path, 'latin1');
    // comm may contain spaces and parentheses: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

/** Whether a PID names a live process (not a zombie). */
export function pidAlive(pid: number): boolean {
  return startTime(pid) !== undefined;
}

/**
 * The process that supervises what this command does: the launcher (our
 * parent, which becomes the pod monitor) when bin/rkt started us, else this
 * process. Pod owners and gc's deleter mark are recorded with it.
 */
export function selfId(): ProcId {
  const pid = hasLauncher() ? process.ppid : process.pid;
  return { pid, start: startTime(pid) ?? '0' };
}

export function formatProcId(p: ProcId): string {
  return `${p.pid} ${p.start}\n`;
}

export function parseProcId(text: string): ProcId | undefined {
  const [pid, start] = text.trim().split(/\s+/);
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0 || !start) return undefined;
  return { pid: n, start };
}

export function isAlive(p: ProcId | undefined): boolean {
  if (!p) return false;
  return startTime(p.pid) === p.start;
}
