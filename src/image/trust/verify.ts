// Detached OpenPGP signature verification of an image file against the keys
// the trust store holds for the image's name (rkt's keystore.CheckSignature).
//
// The image is streamed through openpgp in 64 KiB reads; the digest is
// computed by node:crypto (openpgp uses it for streams), so verifying costs
// about one SHA pass over the file. openpgp's defaults stay in force: weak
// hashes (MD5, RIPEMD-160, SHA-1 for data signatures), DSA/ElGamal keys and
// RSA keys under 2047 bits are refused.
import { open, type FileHandle } from 'node:fs/promises';
import type { Signature } from 'openpgp';
import { RktError, errMessage } from '../../lib/errors.ts';
import { cleanMessage, formatFingerprint, isArmored, keyInfo, loadOpenPGP } from './fingerprint.ts';
import { keyringFor, type KeystoreDirs, type TrustedKey } from './keystore.ts';

export interface SignerInfo {
  /** Lowercase hex fingerprint of the signer's primary key. */
  fingerprint: string;
  uids: string[];
}

export interface VerifyOptions {
  /** The image name (AC identifier) whose keyring applies. */
  imageName: string;
  /** The signed file. */
  dataPath: string;
  /** The detached signature, ASCII-armored (string or bytes) or binary. */
  signature: string | Buffer;
  dirs: KeystoreDirs;
}

const CHUNK = 64 * 1024;

async function parseSignature(signature: string | Buffer): Promise<Signature> {
  const openpgp = await loadOpenPGP();
  let sig: Signature;
  try {
    sig = isArmored(signature)
      ? await openpgp.readSignature({ armoredSignature: typeof signature === 'string' ? signature : signature.toString('utf8') })
      : await openpgp.readSignature({ binarySignature: signature as Buffer });
  } catch (err) {
    throw new RktError('BAD_SIGNATURE', `cannot read the signature: ${cleanMessage(err)}`, { cause: err });
  }
  if (sig.packets.length === 0) throw new RktError('BAD_SIGNATURE', 'no signature found in the signature file');
  return sig;
}

/** "key ID 0x…" plus the issuer fingerprint when the signature names it. */
function describeSigners(sig: Signature): string {
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const p of sig.packets) {
    const id = p.issuerKeyID.toHex().toUpperCase();
    if (seen.has(id)) continue;
    seen.add(id);
    const fpr = p.issuerFingerprint ? Buffer.from(p.issuerFingerprint).toString('hex') : '';
    parts.push(fpr ? `${id} (fingerprint ${formatFingerprint(fpr)})` : id);
  }
  return parts.join(', ');
}

/** The trusted keys (primary or subkey) that issued one of the signature's packets. */
function candidatesFor(sig: Signature, keyring: TrustedKey[]): TrustedKey[] {
  const ids = sig.getSigningKeyIDs();
  return keyring.filter((t) => ids.some((id) => t.key.getKeys(id).length > 0));
}

function untrusted(imageName: string, sig: Signature): RktError {
  return new RktError(
    'UNTRUSTED_KEY',
    `image "${imageName}" is signed by key ${describeSigners(sig)}, which is not trusted for this image`,
    { hint: `if you trust this key, add it with: rkt trust --prefix "${imageName}" [PUBKEY]` },
  );
}

/**
 * Which trusted keys could have made `signature`, without reading any data
 * (rkt checks this before downloading an image). Throws UNTRUSTED_KEY if none.
 */
export async function trustedSigners(opts: { imageName: string; signature: string | Buffer; dirs: KeystoreDirs }): Promise<SignerInfo[]> {
  const sig = await parseSignature(opts.signature);
  const candidates = candidatesFor(sig, await keyringFor(opts.dirs, opts.imageName));
  if (candidates.length === 0) throw untrusted(opts.imageName, sig);
  return candidates.map((c) => ({ fingerprint: c.fingerprint, uids: c.key.getUserIDs() }));
}

function fileStream(fh: FileHandle): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const buf = new Uint8Array(CHUNK);
        const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) controller.close();
        else controller.enqueue(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Verifies a detached signature over the file at `dataPath` against the
 * keyring for `imageName`. Returns the signer; throws RktError UNTRUSTED_KEY
 * when no trusted key made the signature, BAD_SIGNATURE when it does not
 * match the data or cannot be read.
 */
export async function verifyDetachedSignature(opts: VerifyOptions): Promise<SignerInfo> {
  const openpgp = await loadOpenPGP();
  const sig = await parseSignature(opts.signature);
  const candidates = candidatesFor(sig, await keyringFor(opts.dirs, opts.imageName));
  if (candidates.length === 0) throw untrusted(opts.imageName, sig);

  let fh: FileHandle;
  try {
    fh = await open(opts.dataPath, 'r');
  } catch (err) {
    throw new RktError('IO', `cannot read "${opts.dataPath}": ${errMessage(err)}`, { cause: err });
  }
  const failures: string[] = [];
  try {
    let result;
    try {
      const message = await openpgp.createMessage({ binary: fileStream(fh) });
      result = await openpgp.verify({ message, signature: sig, verificationKeys: candidates.map((c) => c.key), format: 'binary' });
    } catch (err) {
      throw new RktError('BAD_SIGNATURE', `cannot verify the signature of image "${opts.imageName}": ${cleanMessage(err)}`, { cause: err });
    }
    // Every outcome is looked at below or deliberately dropped: none may go unhandled.
    for (const s of result.signatures) s.verified.catch(() => undefined);
    // The digests are only final once all data went through: drain it.
    const reader = result.data.getReader();
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch (err) {
      throw new RktError('IO', `cannot read "${opts.dataPath}": ${errMessage(err)}`, { cause: err });
    }
    for (const s of result.signatures) {
      // Signatures by keys outside the keyring are not ours to judge.
      const signer = candidates.find((c) => c.key.getKeys(s.keyID).length > 0);
      if (!signer) continue;
      try {
        await s.verified;
      } catch (err) {
        failures.push(cleanMessage(err));
        continue;
      }
      return { fingerprint: signer.fingerprint, uids: signer.key.getUserIDs() };
    }
  } finally {
    await fh.close();
  }
  const who = candidates.map((c) => formatFingerprint(keyInfo(c.key).fingerprint)).join(', ');
  const why = failures.length > 0 ? `: ${[...new Set(failures)].join('; ')}` : '';
  throw new RktError('BAD_SIGNATURE', `bad signature for image "${opts.imageName}" (key ${who})${why}`);
}

export type { KeystoreDirs };
