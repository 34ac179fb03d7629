// Process identity that survives PID reuse: a PID plus its start time
// (field 22 of /proc/PID/stat). Used for pod liveness instead of flock(2),
// which Node cannot call; execve keeps both, so `rkt run` becoming the
// monitor keeps the pod alive in the eyes of other commands.
import { readFileSync } from 'node:fs';

export interface ProcId {
  pid: number;
  start: string;
}

export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm may contain spaces and parentheses: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export function selfId(): ProcId {
  return { pid: process.pid, start: startTime(process.pid) ?? '0' };
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
