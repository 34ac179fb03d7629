// OpenPGP key helpers shared by the trust store, signature verification and
// `rkt trust`: lazy loading of openpgp, reading public keys (armored or
// binary), and fingerprints formatted the way rkt prints them.
import type { PublicKey } from 'openpgp';
import { RktError, errMessage, type ErrorCode } from '../../lib/errors.ts';

export type OpenPGP = typeof import('openpgp');

let openpgpModule: Promise<OpenPGP> | undefined;

/** openpgp is ~1 MB of JavaScript: load it only when a key or signature is handled. */
export function loadOpenPGP(): Promise<OpenPGP> {
  openpgpModule ??= import('openpgp');
  return openpgpModule;
}

export interface KeyInfo {
  /** Lowercase hex of the primary key fingerprint (40 digits for v4 keys): the trust store file name. */
  fingerprint: string;
  /** 16 lowercase hex digits. */
  keyId: string;
  uids: string[];
  /** Lowercase hex fingerprints of the subkeys. */
  subkeys: string[];
}

const ARMOR_START = '-----BEGIN PGP ';

/** Whether the bytes (or text) look like ASCII armor rather than binary OpenPGP packets. */
export function isArmored(data: string | Uint8Array): boolean {
  if (typeof data === 'string') return true;
  // Skip leading whitespace, then look for the armor header line.
  let i = 0;
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0a || data[i] === 0x0d)) i++;
  return Buffer.from(data.buffer, data.byteOffset + i, Math.min(ARMOR_START.length, data.length - i)).toString('latin1') === ARMOR_START;
}

export interface ReadKeysOptions {
  /** Error code for unreadable input. */
  code: ErrorCode;
  /** Names the input in messages, e.g. `key "./pub.asc"`. */
  what: string;
}

/**
 * Reads every public key in `data` (armored text or binary packets).
 * Refuses secret keys and input without any key.
 */
export async function readPublicKeys(data: string | Uint8Array, opts: ReadKeysOptions): Promise<PublicKey[]> {
  const openpgp = await loadOpenPGP();
  let keys;
  try {
    keys = isArmored(data)
      ? await openpgp.readKeys({ armoredKeys: typeof data === 'string' ? data : Buffer.from(data).toString('utf8') })
      : await openpgp.readKeys({ binaryKeys: data as Uint8Array });
  } catch (err) {
    throw new RktError(opts.code, `${opts.what} is not an OpenPGP public key: ${cleanMessage(err)}`, { cause: err });
  }
  if (keys.length === 0) throw new RktError(opts.code, `${opts.what} holds no OpenPGP public key`);
  for (const k of keys) {
    if (k.isPrivate()) {
      throw new RktError(opts.code, `${opts.what} is a secret key; give the public key instead (gpg --armor --export KEYID)`);
    }
  }
  return keys as PublicKey[];
}

export function keyInfo(key: PublicKey): KeyInfo {
  return {
    fingerprint: key.getFingerprint().toLowerCase(),
    keyId: key.getKeyID().toHex().toLowerCase(),
    uids: key.getUserIDs(),
    subkeys: key.getSubkeys().map((s) => s.getFingerprint().toLowerCase()),
  };
}

/**
 * A fingerprint as rkt (and gpg) print it: uppercase groups of 4 hex digits,
 * with a double space in the middle of a 40-digit fingerprint:
 * `8B86 DE38 890D DB72 9186  7B02 5210 BD88 8818 2190`.
 */
export function formatFingerprint(hex: string): string {
  const groups = hex.toUpperCase().match(/.{1,4}/g) ?? [];
  if (groups.length === 10) return `${groups.slice(0, 5).join(' ')}  ${groups.slice(5).join(' ')}`;
  return groups.join(' ');
}

/** openpgp's error messages, without its "Error reading …:" prefixes stacked up. */
export function cleanMessage(err: unknown): string {
  return errMessage(err).replace(/^(Error [a-z ]+: )+/i, '');
}
