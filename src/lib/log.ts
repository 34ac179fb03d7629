// The CLI's stderr voice: `rkt: <component>: message`. Debug lines only with --debug.
// Kept on globalThis: each command is its own bundle with its own copy of this module.
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for('rkt.log')] ??= { debug: false }) as { debug: boolean };

export function setDebug(on: boolean): void {
  state.debug = on;
}

export function isDebug(): boolean {
  return state.debug;
}

export function warn(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export function debug(msg: string): void {
  if (state.debug) process.stderr.write(`rkt: debug: ${msg}\n`);
}
