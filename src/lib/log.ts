// The CLI's stderr voice: `rkt: <component>: message`. Debug lines only with --debug.
let debugOn = false;

export function setDebug(on: boolean): void {
  debugOn = on;
}

export function isDebug(): boolean {
  return debugOn;
}

export function warn(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export function debug(msg: string): void {
  if (debugOn) process.stderr.write(`rkt: debug: ${msg}\n`);
}
