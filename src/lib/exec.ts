// Replacing this process with another program, keeping the PID, so that
// `rkt run` becomes the pod monitor and `rkt enter` becomes `runc exec`
// without a proxy process in between: through the launcher when there is
// one (src/lib/handoff.ts), else Node 24's process.execve.
import { flushCompileCache } from 'node:module';
import { RktError } from './errors.ts';
import { handOff, hasLauncher } from './handoff.ts';

/** `after` (only with a launcher, see canFinishAfterExec) runs once the new program has taken over. */
export function execve(file: string, args: string[], env: NodeJS.ProcessEnv = process.env, after?: () => void): never {
  // Started by bin/rkt: the launcher execs it (same PID) while Node exits in parallel.
  if (hasLauncher()) handOff(file, args, env, after);
  if (after) throw new RktError('INTERNAL', 'work after exec needs the launcher');
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

/** True when execve can leave work to finish in the background (bin/rkt started us). */
export const canFinishAfterExec = hasLauncher;
