// The CLI's stderr voice: `rkt: <component>: message`. Debug lines only with --debug.
// Kept on globalThis: each command is its own bundle with its own copy of this module.
// Written with writeSync: process.stderr would load Node's stream machinery.
import { writeSync } from 'node:fs';

function err(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    /* stderr closed or full: nothing better to do */
  }
}
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for('rkt.log')] ??= { debug: false }) as { debug: boolean };

export function setDebug(on: boolean): void {
  state.debug = on;
}

export function isDebug(): boolean {
  return state.debug;
}

export function warn(msg: string): void {
  err(`${msg}\n`);
}

export function debug(msg: string): void {
  if (state.debug) err(`rkt: debug: ${msg}\n`);
}

/** Debug line stamped with the ms since start; `performance` costs a module load, so only when debugging. */
export function debugAt(msg: string): void {
  if (state.debug) err(`rkt: debug: ${msg} at ${Math.round(performance.now())} ms\n`);
}
