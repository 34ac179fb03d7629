// Replacing this process with another program (Node 24's process.execve):
// keeps the PID, so `rkt run` becomes the pod monitor and `rkt enter`
// becomes `runc exec` without a proxy process in between.
import { flushCompileCache } from 'node:module';
import { RktError } from './errors.ts';

export function execve(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): never {
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
