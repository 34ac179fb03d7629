// Image IDs as rkt: `sha512-` + the first 64 hex digits of the SHA-512 of the
// uncompressed image tar (appc allows all 128; rkt's store keys truncate).
import { RktError } from '../../lib/errors.ts';

export const KEY_HEX_LEN = 64;
export const SHORT_HEX_LEN = 32;

export function keyFromDigest(hexDigest: string): string {
  return `sha512-${hexDigest.slice(0, KEY_HEX_LEN)}`;
}

/** `sha512-` + 32 hex (rkt fetch output), or the whole key with full. */
export function formatId(key: string, full = false): string {
  return full ? key : key.slice(0, 'sha512-'.length + SHORT_HEX_LEN);
}

/** `sha512-` + 12 hex, as the ID column of `rkt image list` and `rkt list`. */
export function listId(key: string): string {
  return key.slice(0, 'sha512-'.length + 12);
}

export function isImageIdLike(s: string): boolean {
  return /^sha512-[0-9a-f]*$/.test(s);
}

/**
 * Normalizes a user-given ID or ID prefix to a lookup prefix. rkt accepts
 * prefixes of at least `sha512-` plus two hex digits.
 */
export function idPrefix(s: string): string {
  if (!/^sha512-[0-9a-f]{2,128}$/.test(s)) throw new RktError('USAGE', `invalid image ID "${s}": expected sha512- followed by at least 2 hex digits`);
  return s.slice(0, 'sha512-'.length + KEY_HEX_LEN);
}
