// Typed, user-facing errors. Every failure a user can cause is a RktError
// with a stable code; the CLI maps it to one stderr line and an exit code.
// Programmer errors stay plain Error and are reported as internal errors.

export const EXIT = {
  /** rkt's exit code for any rkt failure (rkt/main.go). */
  FAILURE: 254,
  /** No subcommand given (rkt/rkt.go runMissingCommand). */
  MISSING_COMMAND: 2,
} as const;

export type ErrorCode =
  | 'USAGE'
  | 'NOT_ROOT'
  | 'NOT_FOUND'
  | 'AMBIGUOUS'
  | 'EXISTS'
  | 'INVALID_MANIFEST'
  | 'INVALID_IMAGE'
  | 'UNSAFE_PATH'
  | 'BAD_ARCHIVE'
  | 'BAD_SIGNATURE'
  | 'UNTRUSTED_KEY'
  | 'NO_SIGNATURE'
  | 'OS_ARCH'
  | 'FETCH'
  | 'DISCOVERY'
  | 'INSECURE'
  | 'CONFIG'
  | 'STATE'
  | 'IO'
  | 'INTERNAL';

// Commands are bundled separately (one CommonJS file each), so a RktError
// may come from another copy of this class: instanceof checks a brand.
const BRAND = Symbol.for('rkt.RktError');

export class RktError extends Error {
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[BRAND] === true;
  }

  readonly [BRAND] = true;
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; hint?: string; exitCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RktError';
    this.code = code;
    this.exitCode = opts.exitCode ?? EXIT.FAILURE;
    this.hint = opts.hint;
  }
}

export function usage(message: string): RktError {
  return new RktError('USAGE', message);
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
