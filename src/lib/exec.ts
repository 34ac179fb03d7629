// Replacing this process with another program, keeping the PID, so that
// `rkt run` becomes the pod monitor and `rkt enter` becomes `runc exec`
// without a proxy process in between: through the launcher when there is
// one (src/lib/handoff.ts), else Node 24's process.execve.
import { flushCompileCache } from 'node:module';
import { RktError } from './errors.ts';
import { handOff, hasLauncher } from './handoff.ts';

export function execve(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): never {
  // Started by bin/rkt: the launcher execs it (same PID) while Node exits in parallel.
  if (hasLauncher()) handOff(file, args, env);
  if (typeof process.execve !== 'function') throw new RktError('INTERNAL', `Node.js ${process.version} lacks process.execve: Node.js 24 is required`);
  // The V8 code cache is written at exit, which an execve never reaches.
  try {
    flushCompileCache();
  } catch {
    /* no cache */
  }
  process.execve(file, args, env);
  throw new RktError('INTERNAL', `execve ${file} returned`);
}
