// The launcher (launcher/launcher.c, installed as bin/rkt) runs this CLI as
// its child and passes a pipe in RKT_HANDOFF_FD: a program written there is
// exec'd by the launcher itself, so that Node's exit never delays a pod's
// start. The launcher's PID is then the supervisor of what we prepare.
// State lives on globalThis: each command is its own bundle.
import { closeSync, fstatSync, writeSync } from 'node:fs';

const KEY = Symbol.for('rkt.handoff');
type State = { fd: number | undefined };
const state = ((globalThis as Record<symbol, unknown>)[KEY] ??= { fd: undefined }) as State;

/** Takes the pipe from the environment (children never see it). Called once at start-up. */
export function takeHandoff(): void {
  const raw = process.env.RKT_HANDOFF_FD;
  if (raw === undefined) return;
  delete process.env.RKT_HANDOFF_FD;
  const fd = Number(raw);
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    if (!fstatSync(fd).isFIFO()) return;
  } catch {
    return;
  }
  state.fd = fd;
}

/** True when a launcher waits to exec what we hand over; its PID is our parent's. */
export function hasLauncher(): boolean {
  return state.fd !== undefined;
}

/** Encodes a message to the launcher (see launcher.c): a handover, or a program to start. Pure. */
export function handoffMessage(file: string, args: readonly string[], env: NodeJS.ProcessEnv, kind: 'handoff' | 'spawn' = 'handoff'): Buffer {
  const envList = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined).map(([k, v]) => `${k}=${v}`);
  const parts = [kind === 'handoff' ? 'rkt-handoff-1' : 'rkt-spawn-1', file, String(args.length), ...args, String(envList.length), ...envList, 'end'];
  for (const p of parts) if (p.includes('\0')) throw new Error('NUL byte in an argument or environment entry');
  return Buffer.from(`${parts.join('\0')}\0`);
}

function send(msg: Buffer): void {
  const fd = state.fd as number;
  for (let off = 0; off < msg.length; ) off += writeSync(fd, msg, off);
}

/**
 * Has the launcher start a program (stdio on /dev/null, not waited for:
 * its outcome must come through files). False without a launcher. Saves
 * Node's child_process (~10–20 ms to load, and a fork of this big process).
 */
export function launcherSpawn(file: string, args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (state.fd === undefined) return false;
  send(handoffMessage(file, args, env, 'spawn'));
  return true;
}

/**
 * Hands file/args/env to the launcher, runs `after` (work the new program
 * waits for, such as the pod's network), then exits this process.
 */
export function handOff(file: string, args: readonly string[], env: NodeJS.ProcessEnv, after?: () => void): never {
  const fd = state.fd as number;
  send(handoffMessage(file, args, env));
  closeSync(fd);
  state.fd = undefined;
  try {
    after?.();
  } finally {
    process.exit(0);
  }
}
